"""Run one student's sampler: weights present, source readable, a backend, findings out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.errors import GraderError
from grader.findings import Finding, error
from grader.results import SandboxRun
from grader.sandbox.backends import get_backend
from grader.sandbox.interface import SandboxJob
from grader.sandbox.spec import SampleSpec


@dataclass
class SandboxOutcome:
    run: SandboxRun
    findings: list[Finding]
    output_dir: Path
    notes: list[str] = field(default_factory=list)  # the sandbox's own details, for the TA


def _weights_finding(spec: SampleSpec, source_dir: Path) -> Finding | None:
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
