"""`grader check`: a student validates a submission exactly as the TA will grade it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from grader.cli.options import grading_options, skipped_metrics, stats_for_rubric
from grader.console import print_student_result
from grader.files import IMAGE_EXTENSIONS
from grader.intake.discover import Submission, student_id_from_name
from grader.layout import STUDENTS_DIR, student_dir
from grader.pipeline import GradingContext, grade_submission
from grader.rubric import load_rubric
from grader.scratch import scratch_dir


def _is_image_folder(path: Path) -> bool:
    children = [p for p in path.iterdir() if not p.name.startswith(".")]
    images = sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in children)
    return images > 0 and images >= 0.5 * len(children) and len(children) > 16


def build_submission(paths: list[Path], id_pattern: str) -> tuple[Submission, bool]:
    """(submission, partial): one file or one image folder checks that artifact alone."""
    if len(paths) == 1 and paths[0].is_dir() and not _is_image_folder(paths[0]):
        items = sorted(p for p in paths[0].iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")
        partial = False
    else:
        items, partial = list(paths), len(paths) == 1
    names = [paths[0].name] + [p.name for p in items]
    sid = next((i for i in (student_id_from_name(n, id_pattern) for n in names) if i), "student")
    return Submission(student_id=sid, items=items, layout="check"), partial


@click.command("check")
@click.argument("submission", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@grading_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the student's report page here.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML here (one case per rubric line and per problem) for CI.")
def check(submission, rubric_path, stats, inception_weights, device, cache_dir, no_metrics, skip_metrics, as_json,
          html_out, junit_out):
    """Check SUBMISSION (a zip, files, or a folder) against a rubric.

    Exit 0: no problems; 1: the submission has problems; 2: usage or rubric error.
    """
    rubric = load_rubric(rubric_path)
    sub, partial = build_submission(list(submission), rubric.submission.id_pattern)
    with scratch_dir(rubric.limits.max_total_bytes, prefix="grader-check-") as tmp:
        ctx = GradingContext(
            rubric=rubric, work_root=Path(tmp) / "work",
            assets_root=Path(tmp) / STUDENTS_DIR if html_out else None,
            stats_overrides=stats_for_rubric(stats, rubric), weights=inception_weights, device=device,
            cache_dir=cache_dir, compute_metrics=not no_metrics, skip_metrics=skipped_metrics(skip_metrics, rubric),
            partial=partial, progress=not as_json,
            run_sampler=False,
        )
        ctx.preflight(ta_files=False)
        result = grade_submission(sub, ctx)
        if html_out:
            from grader.report.render import render_student_page

            page = render_student_page(result, student_dir(Path(tmp), result.student_id),
                                       rubric=rubric, embed_images=True)
            html_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, html_out)
    if junit_out:
        from grader.junit import write_junit

        write_junit([result], junit_out, suite_name=rubric.name)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_student_result(result, rubric)
        if html_out:
            click.echo(f"report: {html_out}")
    sys.exit(0 if result.status == "clean" else 1)


COMMANDS = [check]
