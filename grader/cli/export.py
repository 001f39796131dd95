"""`grader export`: grades to CSV, Canvas gradebook import, or Gradescope results.json."""

from __future__ import annotations

from pathlib import Path

import click

from grader import atomic
from grader.errors import GraderError
from grader.export import (
    canvas_csv,
    generic_csv,
    incomplete_students,
    json_export,
    write_gradescope,
)
from grader.gradebook import run_rubric
from grader.store import ResultStore


@click.command("export")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "canvas", "gradescope"]), default="csv",
              show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output file (csv, json, canvas) or folder (gradescope); default: stdout / RESULTS/gradescope.")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Canvas gradebook export to join with (canvas format).")
@click.option("--assignment", default=None, help="Canvas assignment column name, e.g. 'HW3 (123456)'.")
@click.option("--allow-incomplete", is_flag=True,
              help="Write Canvas/Gradescope files even with incomplete grades (their grade left empty).")
def export(results_dir, fmt, out, roster, assignment, allow_incomplete):
    """Export the grades stored in RESULTS_DIR.

    An incomplete grade is never exported as a number. Canvas and Gradescope files are
    refused (exit 2, listing the students) while any grade is incomplete, unless
    --allow-incomplete: then those students' grade is left empty. The csv format marks
    them (grade_status, incomplete_reason) with an empty final and has one column per
    rubric metric; json writes every student's full record (metrics with provenance, grade
    lines, findings).
    """
    with ResultStore(results_dir) as store:
        results, run = store.all(), store.last_run()
        rubric = run_rubric(store, run)
    if not results:
        raise GraderError(f"{results_dir}: no graded students in the store")
    incomplete = incomplete_students(results)
    if fmt in ("canvas", "gradescope") and incomplete:
        listing = "\n".join(f"  {r.student_id}: {r.incomplete_reason}" for r in incomplete)
        if not allow_incomplete:
            raise GraderError(
                f"{len(incomplete)} grade(s) are incomplete; a {fmt} file would upload them as blanks "
                f"or zeros:\n{listing}\nResolve them (compute the missing metrics, or `grader override`), "
                "or pass --allow-incomplete to leave their grade empty"
            )
        click.echo(f"warning: {len(incomplete)} incomplete grade(s) left empty:\n{listing}", err=True)
    max_points = run.max_points if run else 100.0
    if fmt == "csv":
        _emit(generic_csv(results, rubric), out)
    elif fmt == "json":
        _emit(json_export(results, run), out)
    elif fmt == "canvas":
        if roster is None or not assignment:
            raise GraderError("--format canvas needs --roster (the Canvas gradebook export) and --assignment NAME")
        exported = canvas_csv(results, roster, assignment, max_points)
        _emit(exported.csv_text, out)
        for label, ids in (("graded but not on the roster", exported.unmatched_results),
                           ("matching several roster rows", exported.ambiguous),
                           ("on the roster without a grade", exported.ungraded_students),
                           ("incomplete, cell left empty", exported.incomplete)):
            if ids:
                click.echo(f"warning: {len(ids)} {label}: {', '.join(ids)}", err=True)
    else:
        folder = out or results_dir / "gradescope"
        paths = write_gradescope(results, folder)
        click.echo(f"{len(paths)} results.json files under {folder}"
                   + (f" ({len(incomplete)} incomplete: no score, output says incomplete)" if incomplete else ""))


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic.write_text(out, text)
        click.echo(f"wrote {out}", err=True)


COMMANDS = [export]
