"""The sandbox interface: what a backend is given, what it reports, and which one runs.

A backend (docker.py, bwrap.py) turns a ``SandboxJob`` into a ``BackendResult`` of plain
facts (exit code, timeout, log, memory and process-limit hits, the output collected).
``run_sampler`` turns those facts into Findings (diagnose.py) and a ``SandboxRun`` record.
The contract a student's sampler sees is written in CONTRACT.md beside this file.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

from grader.errors import GraderError
from grader.findings import Finding
from grader.results import SandboxRun
from grader.rubric import SampleSpec
from grader.sandbox.collect import Collected
from grader.sandbox.logs import LogCapture

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

    @abstractmethod
    def run(self, job: SandboxJob, source_dir: Path, output_dir: Path) -> BackendResult:
        """Run ``job`` with ``source_dir`` read-only at /submission; collect /output into
        the empty folder ``output_dir``. Student misbehaviour is reported in the result,
        never raised; a broken sandbox raises SandboxError."""


def _backend_classes() -> dict[str, type[Backend]]:
    from grader.sandbox.bwrap import BwrapBackend
    from grader.sandbox.docker import DockerBackend

    return {"docker": DockerBackend, "bwrap": BwrapBackend}  # order: preference for "auto"


def available_backends() -> list[str]:
    """Backends that can run here, best first (docker, then bwrap)."""
    return [name for name, cls in _backend_classes().items() if cls().unavailable_reason() is None]


def get_backend(name: str = "auto") -> Backend:
    classes = _backend_classes()
    if name == "auto":
        reasons = []
        for cls in classes.values():
            backend = cls()
            reason = backend.unavailable_reason()
            if reason is None:
                return backend
            reasons.append(f"{cls.name}: {reason}")
        raise SandboxError("no sandbox backend can run here (" + "; ".join(reasons) + ")")
    if name not in classes:
        raise SandboxError(f"unknown sandbox backend {name!r}; choose from {', '.join(classes)}")
    backend = classes[name]()
    reason = backend.unavailable_reason()
    if reason is not None:
        raise SandboxError(f"sandbox backend {name!r} cannot run here: {reason}")
    return backend


@dataclass
class SandboxOutcome:
    run: SandboxRun
    findings: list[Finding]
    output_dir: Path
    notes: list[str] = field(default_factory=list)  # the sandbox's own details, for the TA


def _weights_finding(spec: SampleSpec, source_dir: Path) -> Finding | None:
    from grader.findings import error

    rel = PurePosixPath(spec.weights or "")
    if rel.is_absolute() or ".." in rel.parts:
        raise GraderError(
            f"sample.weights must be a path inside the submission, got {spec.weights!r}"
        )
    path = source_dir.joinpath(*rel.parts)
    resolved = path.resolve()
    if not path.exists() or not resolved.is_relative_to(source_dir.resolve()):
        return error(
            "sandbox.weights_missing",
            f"the sampler's weights are not in the submission: expected {spec.weights}",
            artifact=spec.source,
            path=spec.weights,
            hint=f"put the trained weights at {spec.weights} inside your source zip",
        )
    return None


def _make_readable(tree: Path) -> None:
    """The sampler runs as an unprivileged uid that owns nothing: let it read the source."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        want = mode | (0o555 if path.is_dir() else 0o444)
        if want != mode:
            path.chmod(want)


def run_sampler(
    spec: SampleSpec, source_dir: Path, output_dir: Path, *, backend: str | None = None
) -> SandboxOutcome:
    """Run the student's sampler in a sandbox; its images land in ``output_dir``.

    ``source_dir`` is the student's unpacked source (mounted read-only at /submission; made
    world-readable first, since the sampler's uid owns nothing); ``output_dir`` must be
    empty or absent. ``backend`` overrides ``spec.backend``.
    """
    from grader.sandbox.diagnose import diagnose

    source_dir = Path(source_dir).resolve()
    output_dir = Path(output_dir)
    if not source_dir.is_dir():
        raise GraderError(f"sandbox: the submission's source folder {source_dir} does not exist")
    output_dir.mkdir(parents=True, exist_ok=True)
    if any(output_dir.iterdir()):
        raise GraderError(f"sandbox: the output folder {output_dir} is not empty")
    job = SandboxJob.from_spec(spec)
    chosen = get_backend(backend or spec.backend)

    if spec.weights and (missing := _weights_finding(spec, source_dir)) is not None:
        run = SandboxRun(backend=chosen.name, command=job.command, log="not run: weights missing")
        return SandboxOutcome(run=run, findings=[missing], output_dir=output_dir)

    _make_readable(source_dir)
    result = chosen.run(job, source_dir, output_dir)
    run = SandboxRun(
        backend=result.backend,
        command=job.command,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        seconds=round(result.seconds, 3),
        log=result.log.text(),
        log_truncated=result.log.truncated,
    )
    return SandboxOutcome(
        run=run, findings=diagnose(spec, job, result), output_dir=output_dir, notes=result.notes
    )
