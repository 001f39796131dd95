"""`grader example`: write example submissions from code (no binary fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from grader.datasets import is_mnist_folder
from grader.errors import GraderError
from grader.examples import (
    CLASS,
    REFERENCE_SAMPLES_ENV,
    VARIANTS,
    example_digits,
    write_example_class,
    write_hw3_submission,
)


def _mnist(mnist_dir: Path | None) -> Path | None:
    mnist_dir = mnist_dir or (
        Path(os.environ["GRADER_MNIST_DIR"]) if os.environ.get("GRADER_MNIST_DIR") else None
    )
    if mnist_dir is not None and not is_mnist_folder(mnist_dir):
        raise GraderError(f"{mnist_dir}: no MNIST IDX files there")
    return mnist_dir


@click.group("example")
def example() -> None:
    """Write example submissions."""


MNIST_OPTION = click.option(
    "--mnist",
    "mnist_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of MNIST IDX files for real digits (else $GRADER_MNIST_DIR, else drawn digits).",
)


@example.command("hw3")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--student-id", default="A0000001", show_default=True)
@click.option(
    "--images",
    default=10000,
    show_default=True,
    help="Images in the zip (the course wants 10,000).",
)
@click.option(
    "--broken",
    type=click.Choice(sorted(VARIANTS)),
    default=None,
    help="Break the submission in one way.",
)
@MNIST_OPTION
def hw3(out_dir, student_id, images, broken, mnist_dir):
    """A valid (or --broken) HW3 submission in OUT_DIR."""
    digits = example_digits(images + 8, _mnist(mnist_dir))
    paths = write_hw3_submission(
        out_dir, student_id, digits[:images], digits[images:], **VARIANTS.get(broken, {})
    )
    for p in paths:
        click.echo(p)


@example.command("class")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--images", default=10000, show_default=True, help="Images per student.")
@click.option(
    "--rubric",
    "base_rubric",
    default="hw3",
    show_default=True,
    help="The course rubric to scale down: a path or a shipped name.",
)
@MNIST_OPTION
@click.option(
    "--reference-samples",
    "reference",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar=REFERENCE_SAMPLES_ENV,
    default=None,
    help="The perfect student hands in these reference-DDPM samples and process grid "
    "(a `python -m reference ddpm hw3-submission --out` folder) [env "
    f"{REFERENCE_SAMPLES_ENV}].",
)
def klass(out_dir, images, base_rubric, mnist_dir, reference):
    """A small HW3 class (perfect, weak, wrong count, junk, nested folder, corrupt, late, missing grid)."""
    from grader.rubric_catalog import find_rubric

    paths = write_example_class(
        out_dir, images=images, mnist_dir=_mnist(mnist_dir), base_rubric=find_rubric(base_rubric).path,
        reference=reference,
    )
    for student in CLASS:
        click.echo(f"{student.student_id}: {student.story}")
    click.echo(
        f"\nrubric: {paths['rubric']}\ntimes:  {paths['times']}\n"
        f"grade:  grader run {paths['submissions']} --rubric {paths['rubric']} --times {paths['times']}"
    )


COMMANDS = [example]
