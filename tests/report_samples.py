"""A small class of hand-built result records for the report tests.

Covers a perfect student, one with findings, a late one, one whose grading crashed, one
without an FID and one whose id, file names and sandbox log try to inject HTML. Previews
are real PNGs made from MNIST digits with the same `write_previews` the pipeline uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from grader.findings import error, info, warning
from grader.layout import student_dir_name
from grader.report import write_previews
from grader.results import (
    ArtifactResult,
    Grade,
    GradeLine,
    MetricResult,
    RunInfo,
    SandboxRun,
    StudentResult,
)

TZ = timezone(timedelta(hours=8))
DUE = datetime(2026, 10, 7, 23, 59, tzinfo=TZ)
PERFECT, FINDINGS, LATE, CRASHED, NO_FID = "0712345", "0712346", "0712347", "0712348", "0712349"
HOSTILE = '"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_FILE = "<script>window.__pwned=3</script><img src=x onerror=alert(3)>.png"
HOSTILE_LOG = "epoch 1\n</pre><script>window.__pwned=4</script>\n<img src=x onerror=alert(4)>\n"
RUBRIC_HASH = "9f2c4e1d" * 8
WEIGHTS_SHA = "f21b9728bf43a9e2c01f6ec9a9efbdf6e4ca44a9369cbf69b589dad86a1d6196"
STATS_SHA = "4b1e0c3f" * 8
VERSIONS = {"grader": "0.1.0", "pytorch-gan-metrics": "0.5.3", "torch": "2.15.0"}


@dataclass
class SampleClass:
    results: list[StudentResult]
    run: RunInfo
    out_dir: Path

    def result(self, student_id: str) -> StudentResult:
        return next(r for r in self.results if r.student_id == student_id)

    def student_dir(self, student_id: str) -> Path:
        return self.out_dir / "students" / student_dir_name(student_id)


def write_digit_pngs(digits: np.ndarray, folder: Path) -> list[Path]:
    """Each digit as a 28x28 RGB PNG named 00001.png, 00002.png, ... like HW3 asks."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, digit in enumerate(digits, start=1):
        path = folder / f"{i:05d}.png"
        Image.fromarray(digit).convert("RGB").save(path)
        paths.append(path)
    return paths


def process_grid(digits: np.ndarray, seed: int = 0) -> tuple[Image.Image, list[list[float]]]:
    """An 8x8 make_grid (padding 2) going from noise to a digit in each row, and the noise
    level of each tile."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((8 * 30 + 2, 8 * 30 + 2), dtype=np.uint8)
    noise_levels = []
    for row in range(8):
        clean = digits[row].astype(np.float64) / 255
        noise = rng.standard_normal((28, 28)) * 0.5 + 0.5
        levels = []
        for col in range(8):
            t = col / 7
            tile = np.clip((1 - t) * noise + t * clean, 0, 1)
            y, x = 2 + row * 30, 2 + col * 30
            canvas[y : y + 28, x : x + 28] = np.round(tile * 255).astype(np.uint8)
            levels.append(round(1.04 * (1 - t) + 0.02 * t, 3))  # the grid check's scale
        noise_levels.append(levels)
    return Image.fromarray(canvas).convert("RGB"), noise_levels


def fid_metric(value: float | None, n: int = 10_000, **kw) -> MetricResult:
    provenance = {
        "backend": "pytorch-gan-metrics",
        "version": "0.5.3",
        "weights_sha256": WEIGHTS_SHA,
        "stats_sha256": STATS_SHA,
        "n": n,
        "device": "cpu",
        "resize": "bilinear 299, align_corners=False",
    }
    return MetricResult(
        name="fid", kind="fid", title="FID vs MNIST train", artifact="images", value=value,
        provenance=provenance if value is not None else {}, **kw,
    )


def fid_grade(fid: float | None, *, late_days: int = 0, extra: list[GradeLine] = ()) -> Grade:
    if fid is None:
        band = 0.0
    else:
        band = 100.0 if fid < 40 else 0.0 if fid > 100 else 100 * (100 - fid) / 60
    lines = [GradeLine(label="FID score", points=band,
                       detail="FID not computed" if fid is None else f"FID {fid:.2f}")]
    lines += list(extra)
    raw = max(0.0, sum(line.points for line in lines))
    deduction = min(raw, 10.0 * late_days)
    if late_days:  # as scoring writes it: the late penalty is a line of its own
        lines.append(GradeLine(label="Late penalty", points=-deduction,
                               detail=f"{late_days} day(s) x 10"))
    return Grade(
        max_points=100, raw=raw, late_days=late_days, late_deduction=deduction,
        final=raw - deduction, lines=lines,
        submitted_at=DUE + timedelta(days=late_days, hours=-2 if not late_days else -20),
        submitted_at_source="gradescope metadata",
    )


def build_class(out_dir: Path, digits: np.ndarray, work: Path) -> SampleClass:
    """Write previews into `out_dir/students/<id>/assets` and return the records."""
    stamp = datetime(2026, 10, 8, 9, 0, tzinfo=TZ)

    def images_artifact(student_id: str, n: int, offset: int, **kw) -> ArtifactResult:
        pngs = write_digit_pngs(digits[offset : offset + n], work / student_dir_name(student_id))
        assets = out_dir / "students" / student_dir_name(student_id) / "assets" / "images"
        written = write_previews(pngs, assets, seed=0)
        previews = [p.relative_to(assets.parents[1]).as_posix() for p in written]
        return ArtifactResult(name="images", title="Generated images zip", kind="image_set",
                              count=n, previews=previews, **kw)

    def process_artifact(student_id: str) -> ArtifactResult:
        grid, noise = process_grid(digits[:8])
        assets = out_dir / "students" / student_dir_name(student_id) / "assets" / "process"
        assets.mkdir(parents=True, exist_ok=True)
        grid.save(assets / "process.png")
        return ArtifactResult(
            name="process", title="Diffusion process image", kind="process_grid", status="ok",
            submitted_as="process.png", previews=["assets/process/process.png"],
            details={"noise": noise, "layout": {"rows": 8, "cols": 8, "padding": 2,
                                                "tile": "28x28"}},
        )

    perfect = StudentResult(
        student_id=PERFECT, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        artifacts=[
            images_artifact(PERFECT, 80, 0, status="ok", submitted_as="0712345_images.zip"),
            process_artifact(PERFECT),
            ArtifactResult(name="source", title="Source code zip", kind="source", status="ok",
                           submitted_as="0712345.zip"),
        ],
        metrics=[fid_metric(18.4321)],
        grade=fid_grade(18.4321),
        sandbox=SandboxRun(backend="docker", command="python sample.py --out /output --num 10000",
                           exit_code=0, seconds=312.4,
                           log="\x1b[32mloading weights\x1b[0m\nsampling 100%|####| 10000/10000\n"),
        finished_at=stamp,
    )
    with_findings = StudentResult(
        student_id=FINDINGS, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        findings=[
            error("images.count", "found 9,998 images; expected 10,000: missing 00017.png, "
                  "04512.png", artifact="images", hint="Generate the two missing images and "
                  "zip all 10,000 again."),
            error("images.names", "2 files do not follow the pattern 00001.png: img_1.png, "
                  "img_2.png", artifact="images", path="img_1.png",
                  hint="Rename the files to 00001.png ... 10000.png."),
            warning("zip.junk", "removed 3 macOS entries: __MACOSX/, .DS_Store",
                    artifact="images", path="__MACOSX/._00001.png",
                    hint="Zip from a terminal to leave them out."),
            info("submission.optional_absent", "the source has notebooks but no .py file",
                 artifact="source", hint="Export the notebook as a script as well."),
        ],
        artifacts=[images_artifact(FINDINGS, 30, 100, status="problems",
                                   submitted_as="0712346.zip")],
        metrics=[fid_metric(55.0)],
        grade=fid_grade(55.0, extra=[GradeLine(label="images.count", points=-5,
                                               detail="1 finding x 5 points")]),
        finished_at=stamp,
    )
    late = StudentResult(
        student_id=LATE, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        artifacts=[images_artifact(LATE, 20, 200, status="ok")],
        metrics=[fid_metric(45.5, n=1000, warnings=[
            "computed on 1,000 images: FID is biased upward for small N (the course uses 10,000)"
        ])],
        grade=fid_grade(45.5, late_days=2),
        finished_at=stamp,
    )
    crashed = StudentResult(
        student_id=CRASHED, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        traceback='Traceback (most recent call last):\n  File "pipeline.py", line 1, in run\n'
                  "MemoryError: out of memory while decoding\n",
        finished_at=stamp,
    )
    no_fid = StudentResult(
        student_id=NO_FID, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        findings=[error("images.count", "found 0 images; expected 10,000", artifact="images",
                        hint="Put the 10,000 PNGs at the top level of the zip.")],
        artifacts=[ArtifactResult(name="images", kind="image_set", status="missing")],
        metrics=[fid_metric(None, skipped="the image set has problems (images.count)")],
        grade=fid_grade(None),
        finished_at=stamp,
    )
    hostile = StudentResult(
        student_id=HOSTILE, rubric_hash=RUBRIC_HASH, versions=VERSIONS,
        findings=[error("images.names", f"unexpected file {HOSTILE_FILE}", artifact="images",
                        path=HOSTILE_FILE, hint=f"remove {HOSTILE_FILE}")],
        artifacts=[ArtifactResult(
            name="images", kind="image_set", status="problems", submitted_as=HOSTILE_FILE,
            # A preview path pointing into another student's folder must never be used.
            previews=[f"../{PERFECT}/assets/images/grid16.png"],
            details={"note": HOSTILE_FILE},
        )],
        metrics=[fid_metric(70.0, warnings=[HOSTILE_FILE])],
        grade=fid_grade(70.0, extra=[GradeLine(label=HOSTILE_FILE, points=-1, detail=HOSTILE)]),
        sandbox=SandboxRun(backend="bwrap", command=HOSTILE, exit_code=1, log=HOSTILE_LOG),
        finished_at=stamp,
    )
    results = [perfect, with_findings, late, crashed, no_fid, hostile]
    for r in results:
        r.update_status()
    run = RunInfo(
        rubric_name="HW3 Diffusion generative model", rubric_hash=RUBRIC_HASH,
        rubric_path="rubrics/hw3.yaml", max_points=100,
        command="grader run submissions --rubric rubrics/hw3.yaml",
        versions=VERSIONS, machine={"platform": "Linux x86_64", "cpus": "2", "device": "cpu"},
        started_at=datetime(2026, 10, 8, 8, 0, tzinfo=TZ), finished_at=stamp,
        students=len(results),
    )
    return SampleClass(results=results, run=run, out_dir=out_dir)
