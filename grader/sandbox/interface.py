"""The sandbox interface: what a backend is given and what it reports.

A backend (docker.py, bwrap.py) turns a ``SandboxJob`` into a ``BackendResult`` of plain
facts (exit code, timeout, log, memory and process-limit hits, the output collected).
Which backend runs is backends.py; running one for a student is runner.py. The contract a
student's sampler sees is written in CONTRACT.md beside this file.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from grader.errors import GraderError
from grader.sandbox.collect import Collected
from grader.sandbox.logs import LogCapture
from grader.sandbox.spec import SampleSpec

SUBMISSION_DIR = "/submission"
OUTPUT_DIR = "/output"
SANDBOX_UID = 10001  # the Dockerfile's `sampler` user; bwrap uses the same number
LABEL = "grader.sandbox"  # on every container, so leftovers can always be found


class SandboxError(GraderError):
    """The sandbox itself failed (engine gone, image missing): the TA's problem, not a student's."""


@dataclass(frozen=True)
class SandboxJob:
    """Everything a backend needs, resolved from the rubric's SampleSpec."""

    command: str  # placeholders filled in; run with /bin/sh -c, cwd /submission
    image: str
    gpus: int | str  # 0, 1 or "all"
    timeout_s: float
    memory_bytes: int
    cpus: float
    pids: int
    output_max_bytes: int
    output_max_files: int
    tmp_max_bytes: int
    log_max_bytes: int

    @classmethod
    def from_spec(cls, spec: SampleSpec) -> SandboxJob:
        return cls(
            command=format_command(spec.command, num=spec.num, seed=spec.seed),
            image=spec.image,
            gpus=spec.gpus,
            timeout_s=float(spec.timeout_s),
            memory_bytes=spec.memory_bytes,
            cpus=float(spec.cpus),
            pids=spec.pids,
            output_max_bytes=spec.output_max_bytes,
            output_max_files=spec.output_max_files,
            tmp_max_bytes=spec.tmp_max_bytes,
            log_max_bytes=spec.log_max_bytes,
        )

    def environment(self) -> dict[str, str]:
        """The sampler's whole environment: nothing of the host's."""
        threads = str(max(1, int(self.cpus)))
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
        }


def format_command(template: str, *, num: int, seed: int) -> str:
    """Fill {output}, {num} and {seed}; other braces (shell ${VAR}) are left alone."""
    values = {"output": OUTPUT_DIR, "num": str(int(num)), "seed": str(int(seed))}
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", shlex.quote(value))
    return out


@dataclass
class OutputUsage:
    """statfs of the sandbox's /output tmpfs after the run: was a cap reached?"""

    block_size: int
    blocks: int
    blocks_free: int
    inodes: int
    inodes_free: int

    @classmethod
    def parse(cls, text: str) -> OutputUsage | None:
        try:
            values = [int(v) for v in text.split()]
        except ValueError:
            return None
        return cls(*values) if len(values) == 5 else None

    @property
    def full(self) -> bool:
        # A write that hit ENOSPC still fills the last pages; allow 1% or 4 pages of slack.
        free = self.blocks_free * self.block_size
        total = self.blocks * self.block_size
        return free <= max(4 * self.block_size, total // 100)

    @property
    def out_of_inodes(self) -> bool:
        return self.inodes_free <= 1


@dataclass
class BackendResult:
    backend: str
    exit_code: int | None  # None: never started or never reported
    timed_out: bool
    seconds: float
    log: LogCapture
    collected: Collected
    memory_exhausted: bool = False
    pids_exhausted: bool = False
    output_usage: OutputUsage | None = None
    notes: list[str] = field(default_factory=list)  # sandbox-side details for the TA


class Backend(ABC):
    name: ClassVar[str]

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when this backend can run here; else one sentence saying why not."""

    def image_problem(self, image: str) -> str | None:
        """None when the sampler image (if this backend uses one) is ready; else why not."""
        return None

    @abstractmethod
    def run(self, job: SandboxJob, source_dir: Path, output_dir: Path) -> BackendResult:
        """Run ``job`` with ``source_dir`` read-only at /submission; collect /output into
        the empty folder ``output_dir``. Student misbehaviour is reported in the result,
        never raised; a broken sandbox raises SandboxError."""
