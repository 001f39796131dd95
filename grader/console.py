"""Plain-text rendering of results for the terminal (used by the CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from grader.artifacts import describe as describe_artifact
from grader.findings import Severity
from grader.results import StudentResult
from grader.rubric import Rubric

MARK = {Severity.ERROR: ("x", "red"), Severity.WARNING: ("!", "yellow"), Severity.INFO: ("-", None)}


def print_student_result(result: StudentResult, rubric: Rubric) -> None:
    echo = click.echo
    echo(click.style(f"{rubric.name}: {result.student_id}", bold=True))
    groups: dict[str | None, list] = {}
    for f in result.findings:
        groups.setdefault(f.artifact, []).append(f)
    for artifact in result.artifacts:
        count = f", {artifact.count:,} files" if artifact.count is not None else ""
        given = f" <- {artifact.submitted_as}" if artifact.submitted_as else ""
        colour = {"ok": "green", "problems": "red", "missing": "red"}.get(artifact.status)
        echo(f"\n  {artifact.title} [{click.style(artifact.status.replace('_', ' '), fg=colour)}{count}]{given}")
        spec = rubric.artifacts.get(artifact.name)
        if spec is not None:
            echo(f"    expected: {describe_artifact(spec)}")
            if spec.description:
                echo(f"    note: {spec.description}")
        for f in groups.pop(artifact.name, []):
            _print_finding(f)
    for artifact, findings in groups.items():
        echo(f"\n  {artifact or 'Submission'}")
        for f in findings:
            _print_finding(f)
    for m in result.metrics:
        if m.value is not None:
            p = m.provenance
            echo(f"\n  {m.title}: {m.value:.4f}")
            echo(f"    {p.get('backend', '?')} {p.get('backend_version', '')}, N={p.get('n', '?')}, "
                 f"device {p.get('device', '?')}, weights {str(p.get('weights_sha256', ''))[:12]}, "
                 f"stats {str(p.get('stats_sha256', ''))[:12]}")
        else:  # the reason is said here, once; the grade below only names the line
            here = " here" if m.skipped_cause == "not_here" else ""
            echo(f"\n  {m.title}: not computed{here}: {m.skipped}")
    if result.grade is not None:
        _print_grade(result, rubric)
    if result.traceback:
        echo("\n" + result.traceback)
    failing = sum(f.severity.fails for f in result.findings)
    if result.status == "clean":
        echo(click.style("\nverdict: OK, no problems found", fg="green", bold=True))
    else:
        echo(click.style(f"\nverdict: {failing} problem{'s' if failing != 1 else ''} to fix", fg="red", bold=True))


def _print_grade(result: StudentResult, rubric: Rubric) -> None:
    echo, g = click.echo, result.grade
    causes = {m.name: m.skipped_cause for m in result.metrics}
    echo("\n  Grade")
    for line in g.lines:
        if not line.incomplete:
            echo(f"    {line.points:+8.2f}  {line.label}" + (f"  ({line.detail})" if line.detail else ""))
            continue
        by_ta = causes.get(line.metric) == "not_here"
        why = "computed by the TA" if by_ta else ("not computed, see above" if line.metric in causes else line.detail)
        up_to = f", up to {line.max_points:g} points" if line.max_points is not None else ""
        echo(f"    {'':8}  {line.label}  ({why}{up_to})")
    if g.final is None:  # a line could not be computed: no total, never 0, never a guess
        open_lines = [line for line in g.lines if line.incomplete]
        checked = g.max_points - sum(line.max_points or 0 for line in open_lines)
        names = ", ".join(line.label for line in open_lines)
        if all(causes.get(line.metric) == "not_here" for line in open_lines):
            verb = "is" if len(open_lines) == 1 else "are"
            echo(f"    {'':8}  = no total here: {checked:g} of the {g.max_points:g} points checked here; "
                 f"{names} {verb} computed by the TA")
        else:
            echo(f"    {'':8}  = incomplete: {checked:g} of the {g.max_points:g} points computed; "
                 f"not computed: {names}")
    else:
        echo(f"    {'':8}  = {g.final:.2f} / {g.max_points:g}")
    for req in rubric.requires:
        if not rubric.resolve(req.handed_in).exists():
            echo(f"    {'':8}  the TA also checks that the {req.title.lower()} was handed in "
                 f"({Path(req.handed_in).name} is not on this machine)")


def _print_finding(f) -> None:
    mark, colour = MARK[f.severity]
    click.echo(f"    {click.style(mark, fg=colour)} {f.message}  [{f.code}]")
    if f.severity is not Severity.INFO:
        click.echo(f"      fix: {f.fix}")
