"""One student's grading as a pure task: plain inputs in, a StudentResult out.

GradingContext holds locks and a loaded model, so it never travels: a ContextSpec (paths
and options) does, and the worker rebuilds the context with `build_context`, the one place
that knows GradingContext's constructor.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.errors import GraderError
from grader.intake.discover import Submission
from grader.results import StudentResult


@dataclass(frozen=True)
class ContextSpec:
    rubric_path: str
    rubric_hash: str  # the worker refuses a rubric edited after submission
    assets_root: str | None
    stats_overrides: dict[str, str] = field(default_factory=dict)
    weights: str | None = None
    device: str | None = None
    cache_dir: str | None = None
    compute_metrics: bool = True
    skip_metrics: tuple[str, ...] = ()
    run_sampler: bool = True
    sandbox_backend: str | None = None
    keep_work: str | None = None  # shared folder for unpacked submissions, when kept
    scratch_bytes: int = 0

    @classmethod
    def from_context(cls, ctx) -> ContextSpec:
        from grader.metrics.cache import default_cache_dir
        from grader.metrics.inception import resolve_weights

        weights = str(ctx.weights) if ctx.weights else None
        if ctx.compute_metrics:
            try:  # resolved here, so every node uses the TA's file, not its own lookup
                weights = str(Path(resolve_weights(ctx.weights, download=False)).absolute())
            except GraderError:
                pass
        if ctx.rubric.path is None:
            raise GraderError(
                "a rubric loaded from a file is needed to send tasks to other machines"
            )
        return cls(
            rubric_path=str(Path(ctx.rubric.path).absolute()),
            rubric_hash=ctx.rubric.content_hash,
            assets_root=str(Path(ctx.assets_root).absolute()) if ctx.assets_root else None,
            stats_overrides={k: str(Path(v).absolute()) for k, v in ctx.stats_overrides.items()},
            weights=weights,
            device=ctx.device,
            cache_dir=str(Path(ctx.cache_dir or default_cache_dir()).absolute()),
            compute_metrics=ctx.compute_metrics,
            skip_metrics=tuple(sorted(ctx.skip_metrics)),
            run_sampler=ctx.run_sampler,
            sandbox_backend=ctx.sandbox_backend,
            keep_work=str(Path(ctx.work_root).absolute()) if ctx.keep_work else None,
            scratch_bytes=ctx.rubric.limits.max_total_bytes,
        )


def build_context(
    spec: ContextSpec, work_root: Path, *, device: str | None = None, progress: bool = False
):
    from grader.pipeline import GradingContext
    from grader.rubric import load_rubric

    rubric = load_rubric(spec.rubric_path)
    if rubric.content_hash != spec.rubric_hash:
        raise GraderError(
            f"{spec.rubric_path} changed after the tasks were submitted; run `grader run` again"
        )
    return GradingContext(
        rubric=rubric,
        work_root=Path(spec.keep_work) if spec.keep_work else work_root,
        assets_root=Path(spec.assets_root) if spec.assets_root else None,
        stats_overrides={k: Path(v) for k, v in spec.stats_overrides.items()},
        weights=Path(spec.weights) if spec.weights else None,
        device=device or spec.device,
        cache_dir=Path(spec.cache_dir) if spec.cache_dir else None,
        compute_metrics=spec.compute_metrics,
        skip_metrics=frozenset(spec.skip_metrics),
        run_sampler=spec.run_sampler,
        sandbox_backend=spec.sandbox_backend,
        progress=progress,
        keep_work=spec.keep_work is not None,
    )


def portable(sub: Submission) -> Submission:
    """The submission with absolute paths, for a process started elsewhere."""
    items = [p.absolute() for p in sub.items]
    names = {p.absolute(): n for p, n in sub.item_names.items()}
    return replace(sub, items=items, item_names=names)


@dataclass
class TaskOutput:
    result: StudentResult
    host: str
    job_id: str
    gpus: str  # CUDA_VISIBLE_DEVICES as the scheduler set it
    seconds: float  # grading time inside the task, without start-up


class Stopped(BaseException):
    """The scheduler asked the task to stop (cancel, time limit, preemption)."""


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def run_task(spec: ContextSpec, sub: Submission) -> TaskOutput:
    """The entry point on a cluster node."""
    from grader.pipeline import grade_submission
    from grader.scratch import scratch_dir

    if threading.current_thread() is threading.main_thread():
        # submitit ignores SIGTERM and answers its early-warning signal by requeueing or
        # failing the task. A grading is short and restartable: stop at once on SIGTERM (cancel,
        # time limit, preemption; the scheduler's state then says which) and let the time
        # limit, not the warning, end an overlong task.
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    started = time.monotonic()
    with scratch_dir(spec.scratch_bytes, prefix="grader-task-") as tmp:
        ctx = build_context(spec, Path(tmp))
        result = grade_submission(sub, ctx)
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = (
        f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
        if job
        else os.environ.get("SLURM_JOB_ID", "")
    )
    return TaskOutput(
        result=result,
        host=socket.gethostname(),
        job_id=job_id,
        gpus=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        seconds=time.monotonic() - started,
    )
