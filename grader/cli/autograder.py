"""`grader autograder gradescope|prairielearn`: build a platform's autograder from a rubric.

`grader autograder grade gradescope|prairielearn --root DIR` is what the built autograders
run inside the platform's container (hidden: nobody types it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.options import TA_DIR_OPTION, stats_for_rubric
from grader.files import format_bytes
from grader.rubric import load_rubric


def build_options(f):
    for decorator in reversed([
        click.option("--rubric", "rubric_path", required=True,
                     help="Rubric YAML, or a shipped rubric's name (grader rubric list)."),
        TA_DIR_OPTION,
        click.option("--stats", "stats", multiple=True, metavar="NAME=PATH",
                     help="A metric's TA file to bundle instead of the rubric's (kept at the rubric's path)."),
        click.option("--inception-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="FID Inception weights to bundle (else $GRADER_INCEPTION_WEIGHTS, else the torch hub "
                          "cache)."),
        click.option("--checks-only", is_flag=True,
                     help="Format checks on upload only; metrics and the grade are left to the TA's run."),
    ]):
        f = decorator(f)
    return f


def _prepare(rubric_path: str, stats: tuple[str, ...], weights: Path | None, checks_only: bool):
    """The rubric and its TA files, checked as `grader run` checks them before grading."""
    from grader.pipeline import GradingContext

    rubric = load_rubric(rubric_path)
    overrides = stats_for_rubric(stats, rubric)
    GradingContext(rubric=rubric, work_root=Path("."), stats_overrides=overrides, weights=weights,
                   device="cpu", compute_metrics=not checks_only, run_sampler=False).preflight()
    return rubric, overrides


@click.group("autograder")
def autograder() -> None:
    """Build autograders that grade on upload, from the same rubric as `grader run`."""


@autograder.command("gradescope")
@build_options
@click.option("--fetch-weights", is_flag=True,
              help="Leave the Inception weights out of the zip; setup.sh fetches the official file "
                   "(sha256 checked).")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The autograder zip to write (upload it as the assignment's autograder).")
def gradescope(rubric_path, stats, inception_weights, checks_only, fetch_weights, out):
    """A Gradescope autograder zip: setup.sh, run_autograder, the rubric, its TA files."""
    from grader.autograder.gradescope import build_gradescope

    rubric, overrides = _prepare(rubric_path, stats, inception_weights, checks_only)
    config = build_gradescope(rubric, out, stats_overrides=overrides, weights=inception_weights,
                              checks_only=checks_only, fetch_weights=fetch_weights)
    click.echo(f"{out}: {format_bytes(out.stat().st_size)}, {rubric.name}"
               + (" (format checks only)" if checks_only else "")
               + (", Inception weights fetched by setup.sh" if fetch_weights and config.get("weights") else ""))
    click.echo("Gradescope: Ubuntu 22.04 base image; set the memory, CPU and timeout the README's table gives "
               "for this course.")


@autograder.command("prairielearn")
@build_options
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The question folder to write (into the course's questions/).")
def prairielearn(rubric_path, stats, inception_weights, checks_only, out):
    """A PrairieLearn externally graded question: info.json, question.html, tests/, image recipe."""
    from grader.autograder.prairielearn import build_prairielearn

    rubric, overrides = _prepare(rubric_path, stats, inception_weights, checks_only)
    build_prairielearn(rubric, out, stats_overrides=overrides, weights=inception_weights, checks_only=checks_only)
    click.echo(f"{out}: question for {rubric.name}; build its image from {out / 'image' / 'Dockerfile'}")


@autograder.group("grade", hidden=True)
def grade() -> None:
    """What a built autograder runs inside the platform's container."""


@grade.command("gradescope")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/autograder"))
def grade_gradescope(root):
    from grader.autograder.gradescope import run_gradescope

    sys.exit(run_gradescope(root))


@grade.command("prairielearn")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/grade"))
def grade_prairielearn(root):
    from grader.autograder.prairielearn import run_prairielearn

    sys.exit(run_prairielearn(root))


COMMANDS = [autograder]
