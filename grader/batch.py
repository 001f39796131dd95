"""`grader run`: grade every student of a class, durably and resumably.

Each student is one task with plain inputs (a Submission) and a plain output (a
StudentResult); the store is the only shared state and only this module's main thread
writes to it, as each result arrives from the executor (grader/executors: threads here
sharing one Inception model, or tasks on a Slurm cluster).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from grader.executors import Executor, GradeJob, infrastructure_failure
from grader.executors.local import LocalExecutor
from grader.gradebook import key_parts, rubric_text, why_changed
from grader.intake.discover import Submission, apply_submission_times, discover
from grader.layout import student_dir
from grader.lock import results_lock
from grader.metrics.kinds import handler_for as metric_handler
from grader.pipeline import (
    GradingContext,
    machine_info,
    score_key,
    submission_hash,
    tool_versions,
)
from grader.report.render import render_class_page, render_student_page
from grader.results import RunInfo, StudentResult
from grader.scoring import regrade
from grader.store import ResultStore


@dataclass
class BatchSummary:
    results: list[StudentResult]
    graded: list[str] = field(default_factory=list)  # checked and measured (features may be cached)
    rescored: list[str] = field(default_factory=list)  # only scoring or times changed
    reused: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # records deleted by --prune
    absent: list[str] = field(default_factory=list)  # stored, not in the folder this run (kept)
    run: RunInfo | None = None

    @property
    def errors(self) -> list[str]:
        return [r.student_id for r in self.results if r.status == "error"]


def _when(sub: Submission) -> tuple[datetime | None, str | None]:
    return sub.submitted_at, sub.submitted_at_source


def _render_student(result: StudentResult, ctx: GradingContext, out_dir: Path, run: RunInfo,
                    store: ResultStore, show_tracebacks: bool = False) -> None:
    render_student_page(result, student_dir(out_dir, result.student_id), run=run, rubric=ctx.rubric,
                        history=store.history(result.student_id), show_tracebacks=show_tracebacks)


def _class_stages(ctx: GradingContext, store: ResultStore, present: dict[str, Submission],
                  run_id: int, run: RunInfo) -> set[str]:
    """The metric kinds' stages across the class (e.g. integrity's screen for shared image
    sets), after everyone is graded: each stage's findings replace the student's findings of
    its codes, and the grade is re-scored when they change. Returns the students whose record
    changed."""
    if not ctx.compute_metrics:
        return set()
    current = [r for r in store.all() if r.student_id in present]
    touched = set()
    for name, spec in ctx.rubric.metrics.items():
        stage = metric_handler(spec).class_stage(name, spec, current, ctx)
        if stage is None:
            continue
        run.class_views[name] = stage.view
        for i, result in enumerate(current):
            sid = result.student_id
            if result.replace_findings(stage.codes, stage.findings.get(sid, [])):
                result = regrade(result, ctx.rubric, store.overrides(sid), submitted=_when(present[sid]))
                key, skey = store.keys(sid)
                store.put(result, key, skey, run_id, graded=False, why=f"class-wide stage of {name}")
                current[i] = result
                touched.add(sid)
    return touched


def run_batch(submissions_dir: Path, ctx: GradingContext, out_dir: Path, *, command: str = "",
              **options) -> BatchSummary:
    """One run at a time per results folder: a second one is refused (exit 2) naming the first."""
    with results_lock(out_dir, command):
        return _run_batch(submissions_dir, ctx, out_dir, command=command, **options)


def _run_batch(
    submissions_dir: Path,
    ctx: GradingContext,
    out_dir: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    times: dict[str, datetime] | None = None,
    command: str = "",
    only: set[str] | None = None,
    executor: Executor | None = None,
    prune: bool = False,
    show_tracebacks: bool = False,
) -> BatchSummary:
    subs = discover(submissions_dir, ctx.rubric.submission.id_pattern)
    apply_submission_times(subs, times)
    if only:
        subs = [s for s in subs if s.student_id in only]
    run = RunInfo(
        rubric_name=ctx.rubric.name, rubric_hash=ctx.rubric.content_hash,
        rubric_path=str(ctx.rubric.path.name if ctx.rubric.path else ""),
        max_points=ctx.rubric.scoring.max_points, command=command, versions=tool_versions(),
        machine=machine_info(ctx.device), started_at=datetime.now(timezone.utc), students=len(subs),
    )
    summary = BatchSummary(results=[], run=run)
    with ResultStore(out_dir) as store:
        run_id = store.start_run(run)
        store.save_rubric(ctx.rubric.content_hash, rubric_text(ctx.rubric))
        todo: list[tuple[Submission, str, str]] = []
        parts: dict[str, dict] = {}  # why a stored grade changes: logged in the history
        whys: dict[str, str] = {}
        for sub in subs:
            shash = submission_hash(sub)
            key, skey = ctx.grading_key(shash), score_key(ctx.rubric, sub)
            when = f"{sub.submitted_at.isoformat() if sub.submitted_at else ''}|{sub.submitted_at_source}"
            parts[sub.student_id] = key_parts(shash, ctx.rubric, key, when)
            exists = store.keys(sub.student_id)
            whys[sub.student_id] = why_changed(store.key_parts(sub.student_id), parts[sub.student_id],
                                               force=force, stored=exists is not None)
            stored = None if force else exists
            if stored == (key, skey):
                summary.reused.append(sub.student_id)
            elif stored is not None and stored[0] == key:
                result = regrade(store.get(sub.student_id), ctx.rubric, store.overrides(sub.student_id),
                                 submitted=_when(sub))
                store.put(result, key, skey, run_id, graded=False, why=whys[sub.student_id],
                          key_parts=parts[sub.student_id])
                _render_student(result, ctx, out_dir, run, store, show_tracebacks)
                summary.rescored.append(sub.student_id)
            else:
                todo.append((sub, key, skey))
        bar = tqdm(total=len(todo), desc="grading", unit="student", disable=not ctx.progress)
        executor = executor or LocalExecutor(jobs=jobs)
        skeys = {sub.student_id: skey for sub, _, skey in todo}
        for job, result in executor.grade([GradeJob(sub, key) for sub, key, _ in todo], ctx, out_dir):
            sub, key = job.submission, job.key
            result.submission = ", ".join(sub.display_name(p) for p in sub.items)
            result.grading_key = key
            result = regrade(result, ctx.rubric, store.overrides(sub.student_id))
            if infrastructure_failure(result):
                # Stopped by the scheduler: nothing was graded, and a stored key that can never
                # match makes the next run grade this student again.
                store.put(result, f"failed:{key}", skeys[sub.student_id], run_id, graded=False,
                          why="grading stopped by the scheduler")
            else:
                store.put(result, key, skeys[sub.student_id], run_id, why=whys[sub.student_id],
                          key_parts=parts[sub.student_id])
            _render_student(result, ctx, out_dir, run, store, show_tracebacks)
            summary.graded.append(sub.student_id)
            bar.update(1)
            bar.set_postfix_str(sub.student_id)
        bar.close()
        if only is None:
            # Nothing is deleted unless asked: a student missing from the folder keeps the record.
            present = {s.student_id for s in subs}
            store.mark_presence(present, run_id)
            if prune:
                summary.removed = store.prune(present, run_id)
                for gone in summary.removed:
                    shutil.rmtree(student_dir(out_dir, gone), ignore_errors=True)
            summary.absent = store.absent()
        touched = _class_stages(ctx, store, {s.student_id: s for s in subs}, run_id, run)
        run.finished_at = datetime.now(timezone.utc)
        store.finish_run(run_id, run)
        summary.results = store.all()
        written = (set(summary.graded) | set(summary.rescored)) - touched
        for result in summary.results:
            if result.student_id not in written:  # reused, or not present: its page may have changed
                _render_student(result, ctx, out_dir, run, store, show_tracebacks)
    render_class_page(summary.results, run, out_dir)
    return summary
