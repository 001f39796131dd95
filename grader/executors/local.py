"""Grading in threads of this process, sharing one Inception model per device.

Without --gpus this is the classic runner: `jobs` threads share the caller's context. With
--gpus 0,1 each GPU gets its own context (its own model), and one worker per GPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from grader.errors import GraderError
from grader.executors import Executor, GradeJob
from grader.results import StudentResult


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, jobs: int = 1, gpus: Sequence[int] = ()):
        self.jobs = max(1, jobs)
        self.gpus = list(gpus)

    def check(self, ctx) -> None:
        if not self.gpus:
            return
        if len(set(self.gpus)) != len(self.gpus):
            raise GraderError(f"--gpus {','.join(map(str, self.gpus))}: a GPU is listed twice")
        import torch

        present = torch.cuda.device_count() if torch.cuda.is_available() else 0
        missing = [g for g in self.gpus if g < 0 or g >= present]
        if missing:
            raise GraderError(
                f"--gpus {','.join(map(str, self.gpus))}: this machine has {present} GPU(s); "
                f"no GPU {', '.join(map(str, missing))}"
            )

    def _contexts(self, ctx) -> list:
        if not self.gpus:
            return [ctx] * self.jobs
        from grader.executors.task import ContextSpec, build_context

        spec = ContextSpec.from_context(ctx)
        return [
            build_context(spec, Path(ctx.work_root), device=f"cuda:{g}", progress=ctx.progress)
            for g in self.gpus
        ]

    def grade(
        self, jobs: Sequence[GradeJob], ctx, out_dir: Path
    ) -> Iterator[tuple[GradeJob, StudentResult]]:
        from grader.pipeline import grade_submission

        contexts = self._contexts(ctx)
        free = list(range(len(contexts)))  # worker slots; each slot owns one context
        queue = list(jobs)
        with ThreadPoolExecutor(max_workers=len(contexts)) as pool:
            pending: dict[Future, tuple[GradeJob, int]] = {}
            while queue or pending:
                while queue and free:
                    job, slot = queue.pop(0), free.pop(0)
                    pending[pool.submit(grade_submission, job.submission, contexts[slot])] = (
                        job,
                        slot,
                    )
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job, slot = pending.pop(future)
                    free.append(slot)
                    yield job, future.result()  # grade_submission never raises for student problems
