"""Where each student's grading runs: threads in this process, or tasks on a Slurm cluster.

The batch runner hands an executor the students to grade and writes each result to the
store as the executor yields it; executors never touch the store. A task's input is plain
data (the submission and a ContextSpec, see task.py), so the same task runs unchanged here
or on a cluster node.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.findings import error
from grader.intake.discover import Submission
from grader.results import StudentResult

if TYPE_CHECKING:
    from grader.executors.settings import ExecutorSettings
    from grader.pipeline import GradingContext

FAILURE_CODES = ("executor.task_failed", "executor.timeout")


@dataclass(frozen=True)
class GradeJob:
    """One student to grade; `key` is the grading key (a recorded cluster task is reused only
    for the same key)."""

    submission: Submission
    key: str

    @property
    def student_id(self) -> str:
        return self.submission.student_id


class Executor(ABC):
    name = ""

    def check(self, ctx: GradingContext) -> None:
        """Refuse (GraderError, exit 2) before anything is graded or submitted."""

    @abstractmethod
    def grade(
        self, jobs: Sequence[GradeJob], ctx: GradingContext, out_dir: Path
    ) -> Iterator[tuple[GradeJob, StudentResult]]:
        """Yield (job, result) for every job, in the order they finish."""

    def report(self) -> list[str]:
        """Lines for the end of the run (retries, failures); empty when nothing happened."""
        return []


def infrastructure_failure(result: StudentResult) -> bool:
    """The task was stopped by the scheduler: nothing was graded, a rerun grades it again."""
    return any(f.code in FAILURE_CODES for f in result.findings)


def failed_result(
    job: GradeJob, code: str, message: str, rubric_hash: str, *, detail: str = ""
) -> StudentResult:
    """The record of a student whose grading task never finished: an error, never a grade."""
    result = StudentResult(student_id=job.student_id, rubric_hash=rubric_hash)
    result.findings.append(
        error(code, message, hint="not the student's doing: the TA reruns `grader run`")
    )
    result.traceback = detail or None
    result.status = "error"  # not graded: an error of the run, not problems of the student
    return result


def make_executor(settings: ExecutorSettings, *, jobs: int = 1) -> Executor:
    if settings.kind == "slurm":
        from grader.executors.slurm import SlurmExecutor

        return SlurmExecutor(settings)
    from grader.executors.local import LocalExecutor

    return LocalExecutor(jobs=jobs, gpus=settings.gpus)
