"""Grading one full-size submission inside Gradescope's default limits: 768 MB, one CPU, no network.

For each course a full-size submission is written from real data (HW3: 10,000 MNIST digits,
pytorch-gan-metrics; HW9: 3 x 1,024 CelebA faces at 64x64, pytorch-fid), with reference
statistics from a few hundred images of the same data (their size, not their content, is what
costs memory: mu and a 2048x2048 sigma either way; HW9's file also carries 10,000 feature rows,
as `grader stats --features` writes for the training faces, for KID and precision/recall: the
few hundred real rows repeated with a little noise, so the sizes are the course's). The
training data the integrity lines read lies beside each rubric as the shipped rubrics name it:
MNIST's training files in ``mnist/``, the 10,000 faces (64x64 PNG) in ``celeba64/``.
It is graded by `grader check` (the grading path the platform autograders run) with a cold
feature cache, in a cgroup v1 child capped at 768 MB, pinned to one CPU, in a network namespace
of its own (tests/limits.py), with what an autograder zip ships in its cache (each FID
reference's sqrtm(Σ)). Printed and written as JSON: exit code, wall time, the cgroup's peak
(page cache included), the peak of its anonymous memory, OOM kills, and the grade. Also
measured: `import torch, torchvision` alone under the same limits, the floor under everything
else.

    python benchmarks/bench_limits.py --course hw9 --course hw3 --out bench-limits.json

Needs root and ../shared/data (MNIST, the CelebA faces zip, the Inception weights). The
submissions are kept in --work and reused by a second run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from limits import GRADESCOPE_MEMORY, run_limited

DATA = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = DATA / "inception" / "fid_inception_v3.pth"
STUDENT = "A0123456"
TRAINING_FACES = 10_000  # HW9's training set


def build_hw3(work: Path, reference: int) -> tuple[Path, Path]:
    from grader.examples import example_digits, write_hw3_submission
    from grader.metrics.fid import FidEngine
    from grader.metrics.frechet import save_stats

    sub, course = work / "hw3" / "submission", work / "hw3" / "course"
    if not (course / "rubric.yaml").is_file():
        digits = example_digits(10_000 + 8 + reference, DATA / "mnist")
        write_hw3_submission(sub, STUDENT, digits[:10_000], digits[10_000 : 10_008])
        course.mkdir(parents=True, exist_ok=True)
        engine = FidEngine("pytorch-gan-metrics", weights=WEIGHTS, device="cpu", use_cache=False)
        rgb = np.repeat(digits[-reference:, :, :, None], 3, axis=3)
        save_stats(course / "mnist.npz", *engine.array_statistics(rgb))
        (course / "mnist").mkdir(exist_ok=True)
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
            shutil.copyfile(DATA / "mnist" / name, course / "mnist" / name)
        shutil.copyfile(ROOT / "rubrics" / "hw3.yaml", course / "rubric.yaml")
    return sub, course / "rubric.yaml"


def build_hw9(work: Path, reference: int) -> tuple[Path, Path]:
    import hw9class
    from PIL import Image

    from grader.datasets import load_image_zip
    from grader.metrics.fid import FidEngine
    from grader.metrics.frechet import feature_statistics, save_stats

    # The folder named by the student id, as `grader check` takes the id from the names it is given
    # (the progress-report prerequisite looks it up).
    sub, course = work / "hw9" / STUDENT, work / "hw9" / "course"
    if not (course / "rubric.yaml").is_file() or not sub.is_dir():
        faces = load_image_zip(DATA / "faces" / "celeba_first10k_89x109.zip", size=64)
        hw9class.write_hw9_submission(sub, {"gan": hw9class.blurred(faces[:1024], 1.5),
                                            "diffusion": faces[1024:2048],
                                            "finetuned": hw9class.blurred(faces[2048:3072], 0.7)})
        course.mkdir(parents=True, exist_ok=True)
        engine = FidEngine("pytorch-fid", weights=WEIGHTS, device="cpu", use_cache=False)
        features = engine.array_features(faces[3072 : 3072 + reference])
        rows = np.random.default_rng(0).choice(len(features), TRAINING_FACES)
        noise = np.random.default_rng(1).normal(0, 0.01, (TRAINING_FACES, features.shape[1]))
        features = (features[rows] + noise).astype(np.float32)
        save_stats(course / "celeba64.npz", *feature_statistics(features), features=features)
        (course / "celeba64").mkdir(exist_ok=True)
        for i, face in enumerate(faces):
            Image.fromarray(face).save(course / "celeba64" / f"{i:05d}.png")
        with (course / "progress_reports.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["student_id"], [STUDENT]])
        shutil.copyfile(ROOT / "rubrics" / "hw9.yaml", course / "rubric.yaml")
    return sub, course / "rubric.yaml"


def precompute(rubric: Path, cache: Path) -> None:
    """What an autograder zip ships in its cache (each FID reference's sqrtm(Σ)), made the same way."""
    from grader.autograder.bundle import precomputed
    from grader.rubric import load_rubric

    for name, blob in precomputed(load_rubric(rubric), {}).items():
        target = cache / Path(name).relative_to("cache")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)


def measure(cmd: list[str], memory: int, cpu: int = 0) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1"}
    run = run_limited(cmd, memory_bytes=memory, env=env, cpu=cpu)
    print(f"  {run.summary}", flush=True)
    if run.returncode not in (0, 1):
        print(run.stderr[-2000:], file=sys.stderr)
    return {"exit": run.returncode, "wall_s": round(run.wall_s, 1), "peak_mb": round(run.peak_bytes / 1e6),
            "peak_anon_mb": round(run.peak_anon_bytes / 1e6), "oom_kills": run.oom_kills,
            "stdout": run.stdout}


def grade(course: str, work: Path, reference: int, memory: int, cpu: int) -> dict:
    sub, rubric = (build_hw3 if course == "hw3" else build_hw9)(work, reference)
    with tempfile.TemporaryDirectory(prefix="bench-limits-cache-") as cache:
        precompute(rubric, Path(cache))
        print(f"{course}: grader check under {memory / 1e6:.0f} MB, 1 CPU, no network", flush=True)
        out = measure([sys.executable, "-m", "grader", "check", sub, "--rubric", rubric, "--device", "cpu",
                       "--inception-weights", WEIGHTS, "--cache-dir", cache, "--json"], memory, cpu)
    try:
        result = json.loads(out.pop("stdout"))
        out["fids"] = {m["name"]: m["value"] for m in result["metrics"]}
        out["grade"] = result["grade"]["final"] if result.get("grade") else None
        out["images"] = sum(a.get("count") or 0 for a in result["artifacts"] if a["kind"] == "image_set")
    except (ValueError, KeyError, TypeError):
        out["grade"] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", action="append", choices=["hw3", "hw9"], default=None)
    parser.add_argument("--reference", type=int, default=256, help="images behind the reference statistics")
    parser.add_argument("--memory-mb", type=float, default=GRADESCOPE_MEMORY / 1e6)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "grader-bench-limits")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU the graded run is pinned to")
    args = parser.parse_args()
    memory = int(args.memory_mb * 1e6)
    report = {"memory_mb": args.memory_mb, "cpus": 1, "network": "none"}
    print("import torch, torchvision", flush=True)
    report["import_torch"] = measure([sys.executable, "-c", "import torch, torchvision"], memory, args.cpu)
    report["import_torch"].pop("stdout")
    for course in args.course or ["hw9", "hw3"]:
        report[course] = grade(course, args.work, args.reference, memory, args.cpu)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
