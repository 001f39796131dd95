"""What every platform autograder carries: the rubric, its TA files, the grader, its pinned
dependencies and the Inception weights, laid out so that grading needs no network.

Layout (relative to the autograder's source folder):

    autograder.json       what to grade with: the rubric, the weights, checks only or not
    course/rubric.yaml    the rubric, byte for byte (so grades equal `grader run`'s)
    course/...            each TA file at the path the rubric names, relative to it
    weights/...           the FID Inception weights (unless setup.sh fetches them)
    python/grader/ ...    the grader package (and `reference`, which the integrity kind reads)
    cache/...             what grading would otherwise compute from the TA files on every run
                          (each FID reference's sqrtm(Σ)), in the layout of grader's cache
    requirements.txt      grader's dependencies pinned to the versions built with, torch apart
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from grader import __version__
from grader.errors import ConfigError, GraderError
from grader.files import sha256_file
from grader.metrics.kinds import handler_for as metric_handler
from grader.rubric import Rubric

CONFIG = "autograder.json"
COURSE = "course"
CACHE_DIR = "cache"  # the autograder's GRADER_CACHE_DIR
RUBRIC = "course/rubric.yaml"
WEIGHTS_DIR = "weights"
PYTHON_DIR = "python"
REQUIREMENTS = "requirements.txt"
TORCH_PACKAGES = ("torch", "torchvision")  # installed first, from PyTorch's CPU wheel index
SKIPPED = {"__pycache__", "checkpoints"}  # bytecode, and reference models' training checkpoints


@dataclass
class Bundle:
    """Files to write: archive name -> source file (or text)."""

    files: dict[str, Path] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    executables: set[str] = field(default_factory=set)

    def add_tree(self, folder: Path, under: str) -> None:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not SKIPPED.intersection(rel.parts) and path.suffix != ".pyc":
                self.files[f"{under}/{rel.as_posix()}"] = path

    def write_folder(self, out: Path) -> None:
        for name, source in self.files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / name)
        for name, text in self.texts.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text, encoding="utf-8")
        for name, blob in self.blobs.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(blob)
        for name in self.executables:
            (out / name).chmod(0o755)

    def write_zip(self, out: Path) -> None:
        import zipfile

        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, text in sorted(self.texts.items()):
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100755 if name in self.executables else 0o100644) << 16
                zf.writestr(info, text)
            for name, source in sorted(self.files.items()):
                zf.write(source, name)
            for name, blob in sorted(self.blobs.items()):
                zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), blob, zipfile.ZIP_DEFLATED)
        partial.replace(out)


def _ta_base(rubric: Rubric) -> Path:
    return (rubric.ta_dir or rubric.path.parent).resolve()


def _relative(path: Path, base: Path, what: str) -> str:
    try:
        rel = path.resolve().relative_to(base)
    except ValueError:
        raise ConfigError(
            f"{what}: {path} is not inside {base}; the autograder keeps TA files at the paths the "
            f"rubric names, so name them relative to the rubric (or its --ta-dir)"
        ) from None
    return rel.as_posix()


def ta_files(rubric: Rubric, stats_overrides: dict[str, Path], *, metrics: bool) -> dict[str, Path]:
    """Archive path (under course/) -> the TA file to bundle there: every file the rubric's
    metrics read (`--stats` replacing a metric's file keeps the rubric's path for it) and
    every earlier hand-in list (`requires:`)."""
    from grader.pipeline import GradingContext

    base = _ta_base(rubric)
    plain = GradingContext(rubric=rubric, work_root=Path("."))
    actual = GradingContext(rubric=rubric, work_root=Path("."), stats_overrides=stats_overrides)
    out: dict[str, Path] = {}
    for name, spec in rubric.metrics.items() if metrics else ():
        handler = metric_handler(spec)
        for default, given in zip(handler.ta_files(name, spec, plain), handler.ta_files(name, spec, actual)):
            out[f"{COURSE}/{_relative(default, base, f'metric {name}')}"] = given
    for req in rubric.requires:
        source = rubric.resolve(req.handed_in)
        rel = _relative(source, base, f"requires ({req.title})")
        if source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                out[f"{COURSE}/{rel}/{path.relative_to(source).as_posix()}"] = path
        else:
            out[f"{COURSE}/{rel}"] = source
    return out


def precomputed(rubric: Rubric, stats_overrides: dict[str, Path]) -> dict[str, bytes]:
    """Archive path (under cache/) -> the bytes each metric kind precomputes from its TA files."""
    import tempfile

    from grader.pipeline import GradingContext

    ctx = GradingContext(rubric=rubric, work_root=Path("."), stats_overrides=stats_overrides)
    with tempfile.TemporaryDirectory(prefix="grader-precompute-") as tmp:
        for name, spec in rubric.metrics.items():
            metric_handler(spec).precompute(name, spec, ctx, Path(tmp))
        return {f"{CACHE_DIR}/{path.relative_to(tmp).as_posix()}": path.read_bytes()
                for path in sorted(Path(tmp).rglob("*")) if path.is_file()}


def needs_inception(rubric: Rubric) -> bool:
    return any(metric_handler(spec).uses_inception for spec in rubric.metrics.values())


def pinned_requirements() -> list[str]:
    """grader's own dependencies at the versions installed here (torch and torchvision apart)."""
    try:
        requires = metadata.requires("grader") or []
    except metadata.PackageNotFoundError:
        raise GraderError("grader is not installed (pip install -e .): its dependencies cannot be read") from None
    from packaging.requirements import Requirement

    pins = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.name in TORCH_PACKAGES:
            continue
        try:
            pins.append(f"{req.name}=={metadata.version(req.name)}")
        except metadata.PackageNotFoundError:
            pins.append(str(req))
    return pins


def torch_pins() -> list[str]:
    """torch and torchvision at the versions built with, without a local tag (+cu130): the CPU
    index has the same versions as +cpu."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in TORCH_PACKAGES]


def grader_package(bundle: Bundle) -> None:
    import grader
    import reference

    bundle.add_tree(Path(grader.__file__).parent, f"{PYTHON_DIR}/grader")
    bundle.add_tree(Path(reference.__file__).parent, f"{PYTHON_DIR}/reference")


def base_bundle(rubric: Rubric, stats_overrides: dict[str, Path], weights: Path | None, *,
                checks_only: bool, fetch_weights: bool, platform: str) -> tuple[Bundle, dict]:
    """The files every platform's autograder holds, and its autograder.json."""
    if rubric.path is None:
        raise GraderError("the rubric must be a file")
    bundle = Bundle()
    bundle.files[RUBRIC] = rubric.path
    bundle.files.update(ta_files(rubric, stats_overrides, metrics=not checks_only))
    config: dict = {"platform": platform, "rubric": RUBRIC, "checks_only": checks_only,
                    "grader_version": __version__, "weights": None}
    if needs_inception(rubric) and not checks_only:
        from grader.metrics.inception import WEIGHTS_FILENAME, resolve_weights

        local = resolve_weights(weights, download=False)
        name = f"{WEIGHTS_DIR}/{WEIGHTS_FILENAME}"
        config["weights"] = name
        config["weights_sha256"] = sha256_file(local)
        official = WEIGHTS_FILENAME.rsplit("-", 1)[-1].split(".")[0]  # torch hub's sha256 prefix
        if fetch_weights and not config["weights_sha256"].startswith(official):
            raise ConfigError(
                f"--fetch-weights: the weights graded with here ({local}, sha256 "
                f"{config['weights_sha256'][:12]}...) are not the official file (sha256 {official}...), "
                f"so the fetched file would differ; bundle them instead (leave out --fetch-weights)"
            )
        if not fetch_weights:
            bundle.files[name] = local
    if not checks_only:
        bundle.blobs.update(precomputed(rubric, stats_overrides))
    grader_package(bundle)
    bundle.texts[REQUIREMENTS] = "\n".join(pinned_requirements()) + "\n"
    bundle.texts[CONFIG] = json.dumps(config, indent=2) + "\n"
    return bundle, config


def read_config(source: Path) -> dict:
    try:
        return json.loads((source / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source / CONFIG}: cannot read the autograder's configuration: {exc}") from None
