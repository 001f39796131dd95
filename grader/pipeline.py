"""The stages for one submission: unpack, check, sample, measure, score.

`grader check` (one student, locally) and `grader run` (a class) both call
`grade_submission`, so what a student sees before submitting is what the TA sees.
A failing stage becomes a finding on that student; it never escapes to sink a batch.
"""

from __future__ import annotations

import hashlib
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
from grader.artifacts import CheckedArtifact, CheckRequest, handler_for
from grader.assign import assign, expand_bundle
from grader.errors import ConfigError
from grader.files import remembered_sha256, sha256_file
from grader.findings import Finding, apply_severity_overrides, error, warning
from grader.intake.discover import Submission
from grader.intake.unpack import unpack_zip
from grader.layout import assets_dir, student_dir_name
from grader.metrics.kinds import MetricInputs
from grader.metrics.kinds import handler_for as metric_handler
from grader.metrics.loaded import keep_only
from grader.metrics.resources import memory_is_short, release_freed_memory
from grader.prerequisites import prerequisite_digest, prerequisite_findings, prerequisite_problems
from grader.results import ArtifactResult, MetricResult, StudentResult
from grader.rubric import Rubric
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
    stats_overrides: dict[str, Path] = field(default_factory=dict)  # metric name -> TA file
    weights: Path | None = None
    device: str | None = None
    cache_dir: Path | None = None
    compute_metrics: bool = True
    skip_metrics: frozenset[str] = frozenset()  # metrics not computed in this run (--skip-metric)
    run_sampler: bool = True
    sandbox_backend: str | None = None
    partial: bool = False  # `grader check` of some artifacts only
    progress: bool = False
    keep_work: bool = False
    _engines: dict = field(default_factory=dict, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    forward_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _metric_problems: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def cache_root(self) -> Path:
        """The cache folder: --cache-dir, else $GRADER_CACHE_DIR, else ~/.cache/grader."""
        from grader.metrics.cache import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def resolve(self, path: Path | str) -> Path:
        """A TA file named in the rubric, relative to the rubric's folder."""
        return self.rubric.resolve(path)

    def override(self, name: str, default: Path) -> Path:
        """The TA file a metric reads: `--stats NAME=PATH` when given, else the rubric's."""
        return self.stats_overrides.get(name) or self.rubric.resolve(default)

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

    def grading_key(self, submission_key: str) -> str:
        """What a stored check result depends on: the submission, the rubric's check sections,
        the TA files and the options (not scoring or times: those only re-score)."""
        h = hashlib.sha256()
        h.update(submission_key.encode())
        h.update(self.rubric.check_hash.encode())
        for name, spec in sorted(self.rubric.metrics.items()):
            for path in metric_handler(spec).ta_files(name, spec, self):
                h.update((remembered_sha256(path) if path.is_file() else "absent").encode())
        if self.rubric.requires:
            h.update(prerequisite_digest(self.rubric).encode())
        h.update(f"metrics={self.compute_metrics};sampler={self.run_sampler}".encode())
        if self.skip_metrics:
            h.update(f"skip={sorted(self.skip_metrics)}".encode())
        return h.hexdigest()

    def metric_problems(self, name: str) -> list[str]:
        """Why metric `name` cannot be computed with this configuration (remembered)."""
        with self._engine_lock:
            if name not in self._metric_problems:
                spec = self.rubric.metrics[name]
                self._metric_problems[name] = metric_handler(spec).preflight(name, spec, self)
            return self._metric_problems[name]

    def preflight(self, *, ta_files: bool = True) -> None:
        """TA and configuration mistakes, found once before any student is graded: a
        ConfigError (exit 2) listing every problem with its fix. `ta_files` False (a
        student's `grader check`): metrics whose TA files are absent are skipped with the
        reason instead."""
        problems: list[str] = prerequisite_problems(self.rubric) if ta_files else []
        if self.compute_metrics:
            measured = {n: s for n, s in self.rubric.metrics.items() if n not in self.skip_metrics}
            for name in measured if ta_files else ():
                problems += self.metric_problems(name)
            if any(metric_handler(s).needs_model for s in measured.values()):
                problems += _device_problems(self.device)
        if self.rubric.sample is not None and self.run_sampler:
            from grader.sandbox import sandbox_problems

            problems += sandbox_problems(self.rubric.sample, self.sandbox_backend)
        if problems:
            from grader.rubric_catalog import ta_note

            raise ConfigError("\n".join(problems + [n for n in [ta_note(self.rubric)] if n]))


def _device_problems(device: str | None) -> list[str]:
    if device is None:
        return []
    from grader.errors import GraderError
    from grader.metrics.fid import resolve_device

    try:
        resolve_device(device)
    except GraderError as exc:
        return [f"{exc} (pass --device cpu, or grade on a machine with a GPU)"]
    return []


def _check_artifact(name: str, item: Path, shown: str, work: Path, assets: Path | None,
                    rubric: Rubric) -> CheckedArtifact:
    spec = rubric.artifacts[name]
    handler = handler_for(spec)
    result = ArtifactResult(name=name, title=spec.title or name, kind=spec.kind, status="ok",
                            submitted_as=shown)
    request = CheckRequest(name=name, item=item, shown=shown, work=work, limits=rubric.limits)
    checked = handler.check(spec, request, result)
    checked.findings = apply_severity_overrides(checked.findings, rubric.severity)
    if any(f.severity.fails for f in checked.findings):
        result.status = "problems"
    if assets is not None:
        from grader.report.previews import keep_previews

        result.previews = keep_previews(handler.preview_sources(checked), assets / name,
                                        copy_as=handler.preview_copy, relative_to=assets.parent)
    return checked


def _measure(name: str, spec, inputs: MetricInputs, ctx: GradingContext) -> tuple[MetricResult, list[Finding]]:
    handler = metric_handler(spec)

    def skipped(why: str, cause: str) -> tuple[MetricResult, list[Finding]]:
        result = handler.new_result(name, spec)
        result.skipped, result.skipped_cause = why, cause
        return result, []

    # The student's own work first: with no images the line is what the rubric says for
    # missing work, whatever this machine has.
    if not inputs.images.get(spec.artifact):  # every metric measures an image set
        return skipped("no readable images to measure", "submission")
    if not ctx.compute_metrics:
        return skipped("metrics were turned off for this run (--no-metrics)", "grading")
    if name in ctx.skip_metrics:
        return skipped(f"this metric was skipped for this run (--skip-metric {name})", "grading")
    problems = ctx.metric_problems(name)
    if problems:  # `grader check` without the TA's files: say why once, compute nothing
        return skipped(_not_here(name, spec, problems, ctx), "not_here")
    outcome = handler.measure(name, spec, inputs, ctx)
    if outcome.result.skipped and outcome.result.skipped_cause is None:
        # A kind skips in measure() only for what it found in the images (too few for FID,
        # not matching the label file).
        outcome.result.skipped_cause = "submission"
    return outcome.result, outcome.findings


def _not_here(name: str, spec, problems: list[str], ctx: GradingContext) -> str:
    """One sentence for a metric this machine cannot compute: the TA's files it lacks by name
    (not one sentence per file, not the machine's paths), then any other problem."""
    handler = metric_handler(spec)
    absent = [p for p in handler.ta_files(name, spec, ctx) if not p.is_file()]
    if not absent:
        return "; ".join(problems)
    names = [p.name for p in absent]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    sentence = f"the TA's {listed} {'is' if len(names) == 1 else 'are'} not on this machine: the TA computes it"
    field_ = handler.override_field
    if field_ is not None and ctx.override(name, getattr(spec, field_)) in absent:
        sentence += f" (with the {field_} file: --stats {name}=PATH)"
    others = [p for p in problems if not any(str(path) in p for path in absent)]
    return "; ".join([sentence, *others])


def score_key(rubric: Rubric, sub: Submission) -> str:
    """What a grade depends on beyond the stored checks: scoring, late policy, submission time."""
    when = sub.submitted_at.isoformat() if sub.submitted_at else ""
    return hashlib.sha256(f"{rubric.score_hash}|{when}|{sub.submitted_at_source}".encode()).hexdigest()


def grade_submission(sub: Submission, ctx: GradingContext) -> StudentResult:
    """Grade one student. Never raises for anything the student did."""
    result = StudentResult(student_id=sub.student_id, rubric_hash=ctx.rubric.content_hash,
                           versions=tool_versions(), started_at=datetime.now(timezone.utc))
    work = ctx.work_root / student_dir_name(sub.student_id)
    assets = None
    if ctx.assets_root is not None:
        assets = assets_dir(ctx.assets_root, sub.student_id)
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


def _grade_into(result: StudentResult, sub: Submission, ctx: GradingContext, work: Path,
                assets: Path | None) -> None:
    rubric = ctx.rubric
    items, names = list(sub.items), dict(sub.item_names)
    if expand_bundle(items, rubric):
        bundle = unpack_zip(items[0], work / "_bundle", rubric.limits, flat=False, forbid_junk=True)
        result.findings += [f for f in bundle.findings if f.code != "zip.nested_zip"]
        items = sorted(bundle.root / f for f in bundle.files if "/" not in f)
        names = {}
    assignment = assign(items, rubric, display_names=names, partial=ctx.partial)
    result.findings += assignment.findings
    if not ctx.partial:
        result.findings += prerequisite_findings(rubric, sub.student_id)
    inputs = MetricInputs(student_id=sub.student_id, images={}, roots={}, files={},
                          pictures=assets / "_metrics" if assets is not None else None,
                          pictures_root=assets.parent if assets is not None else None)
    checked: dict[str, CheckedArtifact] = {}
    for name, spec in rubric.artifacts.items():
        item = assignment.artifacts.get(name)
        if item is None:
            status = "not_given" if ctx.partial else "missing"
            result.artifacts.append(ArtifactResult(name=name, title=spec.title or name, kind=spec.kind,
                                                   status=status))
            continue
        checked[name] = _check_artifact(name, item, names.get(item, item.name), work, assets, rubric)
        result.artifacts.append(checked[name].result)
        result.findings += checked[name].findings
        if checked[name].root is not None:
            inputs.roots[name] = checked[name].root
        if checked[name].file is not None:
            inputs.files[name] = checked[name].file
        inputs.images[name] = checked[name].images

    if rubric.sample is not None and ctx.run_sampler and not ctx.partial:
        _run_sampler(result, inputs, work, ctx)

    metrics = list(rubric.metrics.items())
    for position, (name, spec) in enumerate(metrics):
        if memory_is_short():  # TA files no later metric reads let go (an 82 MB feature table)
            keep_only([path for other, other_spec in metrics[position:]
                       for path in metric_handler(other_spec).ta_files(other, other_spec, ctx)])
            release_freed_memory()
        try:
            metric, found = _measure(name, spec, inputs, ctx)
        except (MemoryError, RuntimeError, OSError, ValueError) as exc:
            metric, found = MetricResult(name=name, kind=spec.kind, artifact=spec.artifact,
                                         skipped=f"failed: {type(exc).__name__}: {exc}",
                                         skipped_cause="grading"), []
            result.findings.append(error("metric.failed", f"{name} could not be computed: {exc}",
                                         artifact=spec.artifact))
            result.traceback = traceback.format_exc()
        result.metrics.append(metric)
        result.findings += found
        for text in metric.warnings:
            result.findings.append(warning("metric.warning", f"{name}: {text}", artifact=spec.artifact))

    result.findings = apply_severity_overrides(result.findings, rubric.severity)
    if not ctx.partial:
        result.grade = score(rubric, result.metrics, result.findings,
                             submitted_at=sub.submitted_at, submitted_at_source=sub.submitted_at_source)


def _run_sampler(result: StudentResult, inputs: MetricInputs, work: Path, ctx: GradingContext) -> None:
    """Re-run the student's sampler in the sandbox: to grade what the code produces
    (replace_submitted) and/or to audit that the uploaded images came from it."""
    from grader.sandbox import audit_against_submitted, audit_spec, run_sampler

    spec = ctx.rubric.sample
    source = inputs.roots.get(spec.source)
    if source is None:
        result.findings.append(error("sandbox.no_source", "the sampler could not run: no usable source code",
                                     artifact=spec.source))
        return
    # An audit alone needs only audit.count images; grading the regenerated set needs them all.
    run_spec = spec if spec.replace_submitted or spec.audit is None else audit_spec(spec)
    outcome = run_sampler(run_spec, source, work / "_sampled", backend=ctx.sandbox_backend)
    result.sandbox = outcome.run
    result.findings += outcome.findings
    # The regenerated set is checked by the rules of the artifact it stands for.
    label = f"{spec.produces} (regenerated)"
    produced = ctx.rubric.artifacts[spec.produces].model_copy(update={"count": run_spec.num})
    request = CheckRequest(name=label, item=outcome.output_dir, shown="the sampler's output", work=work,
                           limits=ctx.rubric.limits)
    record = ArtifactResult(name=label, kind=produced.kind, status="ok")
    checked = handler_for(produced).check(produced, request, record)
    result.findings += checked.findings
    if spec.audit is not None:
        fid = _set_distance(ctx, spec.produces) if spec.audit.mode == "fid" else None
        result.findings += audit_against_submitted(outcome.output_dir, inputs.images.get(spec.produces, []),
                                                   spec.audit, fid=fid, artifact=spec.produces)
    if spec.replace_submitted:
        inputs.images[spec.produces] = checked.images


def _set_distance(ctx: GradingContext, artifact: str):
    """The first rubric metric on `artifact` whose kind compares two image sets (FID), for
    the sampler audit (the rubric's validation makes sure there is one)."""
    for name, spec in ctx.rubric.metrics.items():
        if spec.artifact == artifact and (distance := metric_handler(spec).set_distance(name, spec, ctx)):
            return distance
    return None


def machine_info(device: str | None) -> dict[str, str]:
    return {"platform": platform.platform(terse=True), "cpus": str(os.cpu_count()), "device": device or "auto"}
