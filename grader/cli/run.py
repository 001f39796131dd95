"""`grader run`: grade a whole class into a results folder; `grader report`: re-render it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from grader.batch import run_batch
from grader.cli.options import grading_options, skipped_metrics, stats_for_rubric
from grader.errors import GraderError
from grader.executors import make_executor
from grader.executors.settings import executor_options
from grader.intake.discover import read_times_csv
from grader.layout import STUDENTS_DIR
from grader.pipeline import GradingContext
from grader.rubric import load_rubric
from grader.scratch import scratch_dir


@click.command("run")
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@grading_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results folder (grader.db, HTML pages).")
@click.option("--times", "times_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of submission times (student_id,submitted_at) when the LMS export has none.")
@click.option("--jobs", "-j", default=1, show_default=True, help="Students graded in parallel (one shared model).")
@click.option("--force", is_flag=True, help="Regrade everyone, even unchanged submissions.")
@click.option("--student", "only", multiple=True, help="Grade only these student ids.")
@click.option("--no-sandbox", is_flag=True, help="Do not re-run samplers even if the rubric asks for it.")
@click.option("--sandbox-backend", type=click.Choice(["docker", "bwrap"]), default=None)
@click.option("--keep-work", is_flag=True, help="Keep unpacked submissions under OUT/work for inspection.")
@click.option("--prune", is_flag=True,
              help="Delete the stored records of students no longer in SUBMISSIONS (listed); "
                   "without it they are kept, marked not present.")
@click.option("--show-tracebacks", is_flag=True, help="Show the grader's tracebacks on student pages.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML here: one suite per student, one case per rubric line and per problem.")
@executor_options
@click.option("--quiet", "-q", is_flag=True)
def run(submissions, rubric_path, stats, inception_weights, device, cache_dir, no_metrics, skip_metrics, out_dir,
        times_csv, jobs, force, only, no_sandbox, sandbox_backend, keep_work, prune, show_tracebacks, quiet,
        executor_settings, junit_out=None):
    """Grade every submission in SUBMISSIONS with a rubric.

    Resumable: unchanged students are skipped on a rerun. One run per results folder at a
    time. A grade that cannot be fully computed (a metric skipped or failed) is incomplete:
    no total, never 0.

    \b
    Exit codes:
      0  every student graded, every grade complete
      1  grading crashed for some student (see the report)
      2  usage or configuration error, or the results folder is in use by another run
      3  no crash, but some grades are incomplete (see the report; `grader export` refuses
         LMS files until they are resolved or --allow-incomplete)
    """
    rubric = load_rubric(rubric_path)
    with scratch_dir(rubric.limits.max_total_bytes * max(1, jobs), prefix="grader-run-") as tmp:
        ctx = GradingContext(
            rubric=rubric, work_root=out_dir / "work" if keep_work else Path(tmp),
            assets_root=out_dir / STUDENTS_DIR, stats_overrides=stats_for_rubric(stats, rubric),
            weights=inception_weights, device=device, cache_dir=cache_dir, compute_metrics=not no_metrics,
            skip_metrics=skipped_metrics(skip_metrics, rubric),
            run_sampler=not no_sandbox, sandbox_backend=sandbox_backend, progress=not quiet, keep_work=keep_work,
        )
        ctx.preflight()
        executor = make_executor(executor_settings, jobs=jobs)
        executor.check(ctx)
        summary = run_batch(
            submissions, ctx, out_dir, jobs=jobs, force=force,
            times=read_times_csv(times_csv) if times_csv else None,
            command=shlex.join(["grader", *sys.argv[1:]]), only=set(only) or None,
            executor=executor,
            prune=prune, show_tracebacks=show_tracebacks,
        )
    by_status: dict[str, int] = {}
    for r in summary.results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    click.echo(
        f"{len(summary.results)} students: {len(summary.graded)} graded, {len(summary.rescored)} re-scored, "
        f"{len(summary.reused)} unchanged"
        + " | " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    )
    if summary.removed:
        click.echo(f"pruned {len(summary.removed)} record(s) not in {submissions}: {', '.join(summary.removed)}")
    if summary.absent:
        click.echo(f"kept {len(summary.absent)} record(s) of students not in {submissions} (marked not present; "
                   f"--prune deletes them): {', '.join(summary.absent)}")
    present = [r for r in summary.results if r.present]
    if junit_out:
        from grader.junit import write_junit

        write_junit(present, junit_out, suite_name=rubric.name)
        click.echo(f"junit: {junit_out}")
    crashed = [r.student_id for r in present if r.status == "error"]
    incomplete = [r for r in present if r.grade_status == "incomplete"]
    for r in incomplete:
        click.echo(f"incomplete: {r.student_id}: {r.incomplete_reason}")
    for line in executor.report():
        click.echo(line)
    click.echo(f"results: {out_dir / 'index.html'}  (export: grader export {out_dir} --format csv)")
    sys.exit(1 if crashed else 3 if incomplete else 0)




@click.command("report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--rubric", "rubric_path", type=click.Path(dir_okay=False), default=None,
              help="Rubric, for per-line explanations (optional).")
@click.option("--show-tracebacks", is_flag=True, help="Show the grader's tracebacks on student pages.")
def report(results_dir, rubric_path, show_tracebacks):
    """Re-render the HTML pages of RESULTS_DIR from its store, without regrading.

    Safe while a run is going: it shows the last committed state.
    """
    from grader.report.render import render_all
    from grader.store import ResultStore

    with ResultStore(results_dir) as store:
        results, run_info = store.all(), store.last_run()
        histories: dict = {}
        for entry in store.history():
            histories.setdefault(entry.student_id, []).append(entry)
    if run_info is None:
        raise GraderError(f"{results_dir}: no grading run recorded in {ResultStore.FILENAME}")
    rubric = load_rubric(rubric_path) if rubric_path else None
    pages = render_all(results, run_info, results_dir, rubric=rubric, histories=histories,
                       show_tracebacks=show_tracebacks)
    click.echo(f"{len(pages)} pages written under {results_dir}")


COMMANDS = [run, report]
