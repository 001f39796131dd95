"""`grader baseline`: grade a reference model's submission as the rubric's calibration point."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from grader.cli.options import grading_options, skipped_metrics, stats_for_rubric
from grader.console import print_student_result
from grader.pipeline import GradingContext
from grader.rubric import load_rubric


@click.command("baseline")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, path_type=Path),
              help="Reference DDPM checkpoint (python -m reference ddpm train).")
@grading_options
@click.option("--num", default=10000, show_default=True, help="Images to sample.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("baselines"),
              show_default=True, help="Where the submission and calibration.json go.")
def baseline(checkpoint, rubric_path, stats, inception_weights, device, cache_dir, no_metrics, skip_metrics, num, seed,
             out_dir):
    """Sample a course-format submission from CHECKPOINT, grade it, record FID and grade."""
    from grader.baseline import run_baseline

    rubric = load_rubric(rubric_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-baseline-") as tmp:
        ctx = GradingContext(rubric=rubric, work_root=Path(tmp), stats_overrides=stats_for_rubric(stats, rubric),
                             weights=inception_weights, device=device, cache_dir=cache_dir,
                             compute_metrics=not no_metrics, skip_metrics=skipped_metrics(skip_metrics, rubric),
                             run_sampler=False, progress=True)
        ctx.preflight()
        result, record = run_baseline(checkpoint, ctx, out_dir, num=num, seed=seed, device=device or "auto")
    print_student_result(result, rubric)
    click.echo(f"calibration point: {record}")


COMMANDS = [baseline]
