"""The stages for one submission: unpack, check, sample, measure, score.

`grader check` (one student, locally) and `grader run` (a class) both call
`grade_submission`, so what a student sees before submitting is what the TA sees.
A failing stage becomes a finding on that student; it never escapes to sink a batch.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import shutil
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from grader import __version__
from grader.checks.files import check_document, check_image_file
from grader.checks.grid import check_process_grid
from grader.checks.images import check_image_set
from grader.checks.source import check_source
from grader.errors import GraderError
from grader.findings import Finding, apply_severity_overrides, error, warning
from grader.intake.assign import assign, expand_bundle
from grader.intake.discover import Submission
from grader.intake.unpack import UnpackResult, scan_folder, unpack_zip
from grader.report.previews import write_previews
from grader.report.render import student_dir_name
from grader.results import ArtifactResult, MetricResult, StudentResult
from grader.rubric import FidMetric, Rubric
from grader.scoring import score

TOOL_PACKAGES = ("torch", "torchvision", "pytorch-gan-metrics", "pytorch-fid", "numpy", "scipy", "Pillow")


def tool_versions() -> dict[str, str]:
    versions = {"grader": __version__, "python": platform.python_version()}
    for name in TOOL_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def submission_hash(sub: Submission) -> str:
    """Content hash of everything the student handed in (names and bytes, sorted)."""
    h = hashlib.sha256()
    for item in sorted(sub.items):
        paths = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for p in paths:
            h.update(str(p.relative_to(item.parent)).encode() + b"\0")
            h.update(sha256_file(p).encode())
    return h.hexdigest()


@dataclass
class GradingContext:
    """Everything grading needs besides the submission; shared by all students of a run."""

    rubric: Rubric
    work_root: Path  # scratch space; one folder per student
    assets_root: Path | None = None  # results/students: previews kept for reports
    stats_overrides: dict[str, Path] = field(default_factory=dict)  # metric name -> stats file
    weights: Path | None = None
    device: str | None = None
    cache_dir: Path | None = None
    compute_metrics: bool = True
    run_sampler: bool = True
    sandbox_backend: str | None = None
    partial: bool = False  # `grader check` of some artifacts only
    progress: bool = False
    keep_work: bool = False
    _engines: dict = field(default_factory=dict, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _forward_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stats_path(self, name: str, metric: FidMetric) -> Path:
        return self.stats_overrides.get(name) or self.rubric.resolve(metric.stats)

    def engine(self, backend: str):
        """One Inception model per backend, loaded once, shared by every student."""
        from grader.metrics.fid import FidEngine

        with self._engine_lock:
            if backend not in self._engines:
                self._engines[backend] = FidEngine(
                    backend, weights=self.weights, device=self.device, cache_dir=self.cache_dir,
                    progress=self.progress,
                )
            return self._engines[backend]

    def grading_key(self, input_hash: str) -> str:
        """What a stored check result depends on: the submission, the rubric's check sections,
        the TA files and the options (not scoring or times: those only re-score)."""
        h = hashlib.sha256()
        h.update(input_hash.encode())
        h.update(self.rubric.check_hash.encode())
        for name, metric in sorted(self.rubric.metrics.items()):
            if isinstance(metric, FidMetric):
                stats = self.stats_path(name, metric)
                h.update((sha256_file(stats) if stats.is_file() else "absent").encode())
        h.update(f"metrics={self.compute_metrics};sampler={self.run_sampler}".encode())
        return h.hexdigest()

    def metric_unavailable(self) -> str | None:
        """Why FID cannot be computed at all (weights), or None."""
        from grader.metrics.inception import resolve_weights

        try:
            resolve_weights(self.weights)
        except GraderError as exc:
            return str(exc)
        return None


@dataclass
class _ArtifactState:
    result: ArtifactResult
    images: list[Path] = field(default_factory=list)  # for image sets
    root: Path | None = None  # unpacked content


def _unpack(item: Path, dest: Path, ctx: GradingContext, artifact: str, *, flat: bool, forbid_junk: bool) -> UnpackResult:
    if item.is_dir():
        return scan_folder(item, artifact=artifact, flat=flat, forbid_junk=forbid_junk)
    return unpack_zip(item, dest, ctx.rubric.limits, artifact=artifact, flat=flat, forbid_junk=forbid_junk)


def _check_artifact(name: str, item: Path, shown: str, work: Path, assets: Path | None,
                    ctx: GradingContext, findings: list[Finding]) -> _ArtifactState:
    spec = ctx.rubric.artifacts[name]
    result = ArtifactResult(name=name, title=spec.title or name, kind=spec.kind, status="ok", submitted_as=shown)
    state = _ArtifactState(result=result)
    own: list[Finding] = []
    if spec.kind == "image_set":
        unpacked = _unpack(item, work / name, ctx, name, flat=spec.flat, forbid_junk=spec.forbid_junk)
        own += unpacked.findings
        if not unpacked.fatal:
            report = check_image_set(unpacked.root, spec, artifact=name, files=unpacked.files, progress=False)
            own += report.findings
            state.images, state.root = report.images, unpacked.root
            result.count = report.count
            if assets is not None and report.images:
                written = write_previews(report.images, assets / name)
                result.previews = [p.relative_to(assets.parent).as_posix() for p in written]
    elif spec.kind == "source":
        unpacked = _unpack(item, work / name, ctx, name, flat=False, forbid_junk=spec.forbid_junk)
        own += unpacked.findings
        if not unpacked.fatal:
            own += check_source(unpacked.root, unpacked.files, spec, artifact=name)
            state.root = unpacked.root
            result.count = len(unpacked.files)
    elif spec.kind == "process_grid":
        report = check_process_grid(item, spec, artifact=name)
        own += report.findings
        result.details = {"layout": report.layout, "noise": report.noise}
        if assets is not None:
            (assets / name).mkdir(parents=True, exist_ok=True)
            copy = assets / name / "process.png"
            shutil.copyfile(item, copy)
            result.previews = [copy.relative_to(assets.parent).as_posix()]
    elif spec.kind == "image":
        own += check_image_file(item, spec, artifact=name, shown=shown)
        if assets is not None and not own:
            (assets / name).mkdir(parents=True, exist_ok=True)
            copy = assets / name / f"image{item.suffix.lower()}"
            shutil.copyfile(item, copy)
            result.previews = [copy.relative_to(assets.parent).as_posix()]
    elif spec.kind == "document":
        own += check_document(item, spec, artifact=name, shown=shown)
    own = apply_severity_overrides(own, ctx.rubric.severity)
    if any(f.severity.fails for f in own):
        result.status = "problems"
    findings += own
    return state


def _measure(name: str, metric, images: list[Path], ctx: GradingContext) -> MetricResult:
    result = MetricResult(name=name, kind=metric.kind, title=metric.title or name, artifact=metric.artifact)
    if not ctx.compute_metrics:
        result.skipped = "metrics were turned off for this run (--no-metrics)"
        return result
    if not isinstance(metric, FidMetric):
        result.skipped = f"metric kind {metric.kind!r} needs the TA's evaluator; not available in this version"
        return result
    if not images:
        result.skipped = "no readable images to measure"
        return result
    stats = ctx.stats_path(name, metric)
    if not stats.is_file():
        result.skipped = (
            f"reference statistics not found: {stats} (the TAs publish it; put it there or pass --stats {name}=PATH)"
        )
        return result
    why = ctx.metric_unavailable()
    if why is not None:
        result.skipped = why
        return result
    engine = ctx.engine(metric.backend)
    with ctx._forward_lock:  # one model on one device: students take turns
        fid = engine.fid(images, stats)
    result.provenance = dict(fid.provenance)
    if math.isnan(fid.fid):  # fewer than two images: FID is undefined, never a number to score
        result.skipped = "; ".join(fid.warnings) or "FID is undefined for this set"
        return result
    result.value = fid.fid
    result.warnings = list(fid.warnings)
    return result


def score_key(rubric: Rubric, sub: Submission) -> str:
    """What a grade depends on beyond the stored checks: scoring, late policy, submission time."""
    when = sub.submitted_at.isoformat() if sub.submitted_at else ""
    return hashlib.sha256(f"{rubric.score_hash}|{when}|{sub.submitted_at_source}".encode()).hexdigest()


def rescore(result: StudentResult, sub: Submission, rubric: Rubric) -> StudentResult:
    """A stored result graded again under edited scoring sections; nothing is re-checked."""
    result = result.model_copy(deep=True)
    result.rubric_hash = rubric.content_hash
    if result.grade is not None:
        result.grade = score(rubric, result.metrics, result.findings,
                             submitted_at=sub.submitted_at, submitted_at_source=sub.submitted_at_source)
    return result


def grade_submission(sub: Submission, ctx: GradingContext) -> StudentResult:
    """Grade one student. Never raises for anything the student did."""
    result = StudentResult(student_id=sub.student_id, rubric_hash=ctx.rubric.content_hash,
                           versions=tool_versions(), started_at=datetime.now(timezone.utc))
    work = ctx.work_root / student_dir_name(sub.student_id)
    assets = None
    if ctx.assets_root is not None:
        assets = ctx.assets_root / student_dir_name(sub.student_id) / "assets"
        shutil.rmtree(assets, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    try:
        _grade_into(result, sub, ctx, work, assets)
    except Exception:  # noqa: BLE001 -- a crash in a stage is this student's record, not the batch's
        result.traceback = traceback.format_exc()
        result.findings.append(
            error("grader.internal_error", "grading this submission crashed; the TA has the details",
                  hint="this is not necessarily your fault; the TA will look at it")
        )
    finally:
        if not ctx.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    result.update_status()
    result.finished_at = datetime.now(timezone.utc)
    return result


def _grade_into(result: StudentResult, sub: Submission, ctx: GradingContext, work: Path, assets: Path | None) -> None:
    rubric = ctx.rubric
    items, names = list(sub.items), dict(sub.item_names)
    if expand_bundle(items, rubric):
        bundle = unpack_zip(items[0], work / "_bundle", rubric.limits, flat=False, forbid_junk=True)
        result.findings += [f for f in bundle.findings if f.code != "zip.nested_zip"]
        items = sorted(bundle.root / f for f in bundle.files if "/" not in f)
        names = {}
    assignment = assign(items, rubric, display_names=names, partial=ctx.partial)
    result.findings += assignment.findings
    states: dict[str, _ArtifactState] = {}
    for name, spec in rubric.artifacts.items():
        item = assignment.artifacts.get(name)
        if item is None:
            status = "not_given" if ctx.partial else "missing"
            result.artifacts.append(ArtifactResult(name=name, title=spec.title or name, kind=spec.kind, status=status))
            continue
        shown = names.get(item, item.name)
        states[name] = _check_artifact(name, item, shown, work, assets, ctx, result.findings)
        result.artifacts.append(states[name].result)

    images_for = {name: s.images for name, s in states.items()}
    if rubric.sample is not None and ctx.run_sampler and not ctx.partial:
        _run_sampler(result, states, images_for, work, ctx)

    for name, metric in rubric.metrics.items():
        try:
            result.metrics.append(_measure(name, metric, images_for.get(metric.artifact, []), ctx))
        except (MemoryError, RuntimeError, OSError, ValueError) as exc:
            result.metrics.append(MetricResult(name=name, kind=metric.kind, artifact=metric.artifact,
                                               skipped=f"failed: {type(exc).__name__}: {exc}"))
            result.findings.append(error("metric.failed", f"{name} could not be computed: {exc}", artifact=metric.artifact))
            result.traceback = traceback.format_exc()
        for text in result.metrics[-1].warnings:
            result.findings.append(warning(f"metric.{name}.warning", text, artifact=metric.artifact))

    result.findings = apply_severity_overrides(result.findings, rubric.severity)
    if not ctx.partial:
        result.grade = score(rubric, result.metrics, result.findings,
                             submitted_at=sub.submitted_at, submitted_at_source=sub.submitted_at_source)


def _run_sampler(result: StudentResult, states: dict[str, _ArtifactState], images_for: dict[str, list[Path]],
                 work: Path, ctx: GradingContext) -> None:
    """Re-run the student's sampler in the sandbox: to grade what the code produces
    (replace_submitted) and/or to audit that the uploaded images came from it."""
    from grader.sandbox import audit_against_submitted, audit_spec, run_sampler

    spec = ctx.rubric.sample
    source = states.get(spec.source)
    if source is None or source.root is None:
        result.findings.append(error("sandbox.no_source", "the sampler could not run: no usable source code",
                                     artifact=spec.source))
        return
    # An audit alone needs only audit.count images; grading the regenerated set needs them all.
    run_spec = spec if spec.replace_submitted or spec.audit is None else audit_spec(spec)
    out = work / "_sampled"
    outcome = run_sampler(run_spec, source.root, out, backend=ctx.sandbox_backend)
    result.sandbox = outcome.run
    result.findings += outcome.findings
    label = f"{spec.produces} (regenerated)"
    produced_spec = ctx.rubric.artifacts[spec.produces].model_copy(update={"count": run_spec.num})
    report = check_image_set(outcome.output_dir, produced_spec, artifact=label)
    result.findings += report.findings
    if spec.audit is not None:
        fid = None
        if spec.audit.mode == "fid":
            backend = next((m.backend for m in ctx.rubric.metrics.values()
                            if isinstance(m, FidMetric) and m.artifact == spec.produces), "pytorch-gan-metrics")
            fid = _set_fid(ctx, backend)
        result.findings += audit_against_submitted(outcome.output_dir, images_for.get(spec.produces, []),
                                                   spec.audit, fid=fid, artifact=spec.produces)
    if spec.replace_submitted:
        images_for[spec.produces] = report.images


def _set_fid(ctx: GradingContext, backend: str):
    """FID between two image sets, for the sampler audit."""
    from grader.metrics.frechet import frechet_distance

    def fid(a: list[Path], b: list[Path]) -> float:
        engine = ctx.engine(backend)
        with ctx._forward_lock:
            return frechet_distance(*engine.statistics(a), *engine.statistics(b))

    return fid


def machine_info(device: str | None) -> dict[str, str]:
    return {"platform": platform.platform(terse=True), "cpus": str(os.cpu_count()), "device": device or "auto"}
