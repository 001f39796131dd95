"""`grader history`: how a student's stored grade changed; `grader override`: a TA's decision
on a grade, kept in the store and applied again on every regrade or re-score."""

from __future__ import annotations

from pathlib import Path

import click

from grader.codes import resolve_pattern
from grader.errors import GraderError
from grader.gradebook import rescore_with_overrides
from grader.layout import student_dir
from grader.lock import results_lock
from grader.report.render import render_class_page, render_student_page
from grader.results import HistoryEntry, Override
from grader.store import ResultStore

RESULTS = click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))


def _points(value: float | None, status: str | None) -> str:
    return f"{value:.2f}" if value is not None else (status or "-")


def _line(h: HistoryEntry) -> str:
    run = f"run {h.run_id}" if h.run_id is not None else "by hand"
    text = f"{h.at.isoformat(sep=' ', timespec='seconds')}  {run:>8}  {_points(h.old_final, h.old_status):>10} -> " \
           f"{_points(h.new_final, h.new_status):<10}  {h.why}"
    return text + (f"  ({h.detail})" if h.detail else "")


def _describe(o: Override) -> str:
    if o.kind == "points":
        return f"grade set to {o.points:g}"
    if o.kind == "adjust":
        return f"adjusted by {o.points:+g}"
    return f"{o.code} does not count"


def _store(results_dir: Path) -> ResultStore:
    if not (results_dir / ResultStore.FILENAME).is_file():
        raise GraderError(f"{results_dir}: no {ResultStore.FILENAME} here (not a results folder)")
    return ResultStore(results_dir)


@click.command("history")
@RESULTS
@click.argument("student")
def history(results_dir, student):
    """Every change of STUDENT's stored grade: when, from what to what, and why."""
    with _store(results_dir) as store:
        entries = store.history(student)
        overrides = store.overrides(student)
        current = store.get(student)
    if not entries and current is None:
        raise GraderError(f"{results_dir}: no record or history for student {student!r}")
    click.echo(f"{'when':25}  {'run':>8}  {'before':>10}    {'after':<10}  why")
    for h in entries:
        click.echo(_line(h))
    for o in overrides:
        click.echo(f"active override: {_describe(o)}: {o.reason}")
    if current is not None:
        status = current.grade_status + ("" if current.present else ", not present in the latest run")
        final = current.grade.final if current.grade else None
        click.echo(f"now: {_points(final, current.grade_status)} ({status})")


@click.command("override")
@RESULTS
@click.argument("student")
@click.option("--points", type=float, default=None, help="Set the final grade to this (completes an incomplete one).")
@click.option("--adjust", type=float, default=None, help="Add this to the computed grade (negative to take off).")
@click.option("--clear", "clear_code", default=None,
              help="A finding code (or glob) that no longer counts toward this student's grade.")
@click.option("--remove", is_flag=True, help="Take back the student's overrides (with --clear: only that one).")
@click.option("--reason", default=None, help="Why: shown to the student and kept in the history.")
def override(results_dir, student, points, adjust, clear_code, remove, reason):
    """Record a TA's decision on STUDENT's grade.

    The override is a line of the grade (labelled as a TA override, with the reason), is
    logged in the history, survives regrades and re-scores, and appears in exports. The
    student's page and the class page are written again. Refused (exit 2) while a
    `grader run` holds the results folder.
    """
    given = [name for name, v in (("--points", points), ("--adjust", adjust), ("--clear", clear_code)) if v is not None]
    if remove:
        if points is not None or adjust is not None:
            raise GraderError("--remove takes back overrides; it does not go with --points or --adjust")
    elif len(given) != 1:
        raise GraderError("give exactly one of --points, --adjust, --clear (or --remove)")
    if clear_code is not None and not remove:
        try:  # a typo would clear nothing and look like a decision taken
            clear_code = resolve_pattern(clear_code)
        except ValueError as exc:
            raise GraderError(f"--clear {clear_code}: {exc}") from None
    if not remove and not (reason or "").strip():
        raise GraderError("--reason is required: the student sees it and the history keeps it")
    with results_lock(results_dir, f"grader override {student}"), _store(results_dir) as store:
        stored = store.get(student)
        if stored is None:
            raise GraderError(f"{results_dir}: no stored record for student {student!r}")
        if stored.grade is None:
            raise GraderError(f"{student} has no grade to override (grading crashed or was partial); "
                              "regrade them first")
        if remove:
            taken = store.remove_overrides(student, clear_code)
            if not taken:
                raise GraderError(f"{student} has no such override to remove")
            why = f"override removed ({clear_code or 'all'})"
            note = reason or ""
        else:
            kind = "points" if points is not None else "adjust" if adjust is not None else "clear"
            decision = Override(kind=kind, points=points if points is not None else adjust, code=clear_code,
                                reason=reason.strip())
            store.add_override(student, decision)
            why, note = f"override: {_describe(decision)}", decision.reason
        try:
            result = rescore_with_overrides(store, stored)
        except LookupError as exc:
            raise GraderError(f"{student}: {exc}") from None
        keys = store.keys(student)
        store.put(result, keys[0], keys[1], None, graded=False, why=why, always_log=True, detail=note)
        result.present = stored.present
        run = store.last_run()
        render_student_page(result, student_dir(results_dir, student), run=run,
                            history=store.history(student))
        if run is not None:
            render_class_page(store.all(), run, results_dir)
    final = result.grade.final if result.grade else None
    click.echo(f"{student}: {_points(stored.grade.final, stored.grade_status)} -> "
               f"{_points(final, result.grade_status)} ({why})")


COMMANDS = [history, override]
