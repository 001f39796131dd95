"""The Gradescope autograder, end to end, with no Gradescope account.

For HW3 and HW9 (small image counts, the course rubrics otherwise): `grader autograder
gradescope` builds the zip; its setup.sh runs once on a fresh root (a clean venv, installing
torch, torchvision and the pinned dependencies with pip: the Debian sandbox root has Python
3.11 and no pip, and Gradescope's own image is not reachable here, so a clean venv on this
host is the closest); run_autograder then grades a good, a broken, a late and a
not-computable submission in Gradescope's layout (/autograder as a folder of its own) under
Gradescope's default limits: 768 MB memory cgroup, one CPU, no network. Each results.json is
validated against a JSON Schema written from Gradescope's specification, and its points are
compared with `grader run`'s on the same files and times.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import kept
import limits
import numpy as np
import pytest
import yaml

from grader.examples import example_digits, write_hw3_submission
from grader.metrics.frechet import save_stats

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "gradescope_results.schema.json").read_text())
COUNT = 12  # images per set: FID on a few dozen images keeps this quick
SID = "A0123456"
HW3_DUE = datetime.fromisoformat("2026-11-30T23:59:00+08:00")
HW9_DUE = datetime.fromisoformat("2026-12-18T23:59:00+08:00")

pytestmark = pytest.mark.slow


def grader(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=1800, check=False)


def synthetic_stats(path: Path, seed: int) -> Path:
    """Reference statistics of the right shape (mu 2048, a PSD 2048x2048 sigma); their content
    only moves the FID, which both graders compute alike."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2048, 96)) * 0.05
    save_stats(path, rng.random(2048) * 0.3, a @ a.T)
    return path


def course_rubric(name: str, out: Path, edit) -> Path:
    data = yaml.safe_load((ROOT / "rubrics" / f"{name}.yaml").read_text())
    edit(data)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _only_fids(data: dict) -> None:
    """The FIDs are what this test follows under Gradescope's 768 MB. The report-only metrics
    need the TA's training sets; the whole shipped rubrics at full size under the cap are
    measured by benchmarks/bench_limits.py (README)."""
    data["metrics"] = {k: m for k, m in data["metrics"].items() if m["kind"] == "fid"}


def _hw3(data: dict) -> None:
    _only_fids(data)
    data["artifacts"]["images"]["count"] = COUNT
    data["scoring"]["bands"][0]["points"] = [[0, 100], [20000, 0]]  # any FID of these sets scores
    data["late"]["due"] = HW3_DUE.isoformat()
    data["platforms"] = {"gradescope": {"lines": {"fid": "after_published"}, "leaderboard": ["fid"]}}


def _hw9(data: dict) -> None:
    for key in ("gan", "diffusion", "finetuned"):
        data["artifacts"][key]["count"] = COUNT
    for band in data["scoring"]["bands"]:
        band["points"] = [[0, 10], [20000, 0]]
    data["late"]["due"] = HW9_DUE.isoformat()
    _only_fids(data)
    data["platforms"] = {"gradescope": {"leaderboard": ["fid_gan", "fid_diffusion", "fid_finetuned"],
                                        "lines": {"fid_gan": "after_published"}}}


def faces_like(n: int, seed: int) -> np.ndarray:
    """64x64 RGB images: smooth colour fields, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    out = []
    for _ in range(n):
        c = rng.random((3, 3))
        img = np.stack([c[k, 0] + c[k, 1] * x + c[k, 2] * y for k in range(3)], axis=-1)
        out.append(np.clip(img / img.max() * 255 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


def write_hw9(folder: Path, *, sets: dict[str, np.ndarray], loss_plot: bool = True) -> Path:
    import hw9class

    return hw9class.write_hw9_submission(folder, sets, loss_plot=loss_plot)


@pytest.fixture(scope="module")
def courses(tmp_path_factory, mnist_dir):
    root = tmp_path_factory.mktemp("gradescope")
    hw3 = root / "hw3"
    hw3.mkdir()
    course_rubric("hw3", hw3 / "rubric.yaml", _hw3)
    synthetic_stats(hw3 / "mnist.npz", 3)
    digits = example_digits(3 * (COUNT + 8), mnist_dir)
    subs3 = {}
    good = digits[:COUNT], digits[COUNT:COUNT + 8]
    subs3["good"] = write_hw3_submission(root / "hw3-subs" / "good", SID, *good)
    subs3["late"] = write_hw3_submission(root / "hw3-subs" / "late", SID, *good)
    other = digits[COUNT + 8 : 2 * COUNT + 16]
    subs3["broken"] = write_hw3_submission(root / "hw3-subs" / "broken", SID, other[:COUNT], other[COUNT:],
                                           drop=3, junk=True)
    nofid = write_hw3_submission(root / "hw3-subs" / "not-computable", SID, *good)
    nofid[0].unlink()  # no images zip: FID cannot be computed, the grade is incomplete
    subs3["not-computable"] = nofid[1:]

    hw9 = root / "hw9"
    hw9.mkdir()
    course_rubric("hw9", hw9 / "rubric.yaml", _hw9)
    synthetic_stats(hw9 / "celeba64.npz", 9)
    with (hw9 / "progress_reports.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["student_id"], [SID]])
    images = faces_like(3 * COUNT, 1)
    sets = {"gan": images[:COUNT], "diffusion": images[COUNT:2 * COUNT], "finetuned": images[2 * COUNT:]}
    subs9 = {}
    for name in ("good", "late"):
        write_hw9(root / "hw9-subs" / name, sets=sets)
    write_hw9(root / "hw9-subs" / "broken", sets={**sets, "gan": sets["gan"][:5]}, loss_plot=False)
    # Every GAN image unreadable: that FID cannot be computed (HW9's rubric gives such a line 0).
    folder = write_hw9(root / "hw9-subs" / "not-computable", sets=sets)
    for png in (folder / "gan").iterdir():
        png.write_bytes(b"not a png")
    for name in ("good", "late", "broken", "not-computable"):
        subs9[name] = sorted((root / "hw9-subs" / name).iterdir())
    return {"hw3": (hw3, subs3, HW3_DUE), "hw9": (hw9, subs9, HW9_DUE)}


@pytest.fixture(scope="module")
def zips(courses, inception_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("zips")
    built = {}
    for course, (folder, _, _) in courses.items():
        proc = grader("autograder", "gradescope", "--rubric", folder / "rubric.yaml",
                      "--inception-weights", inception_weights, "-o", out / f"{course}.zip")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        built[course] = out / f"{course}.zip"
    return built


@pytest.fixture(scope="module")
def venv(zips):
    """setup.sh of the HW3 zip on a fresh root: a clean venv, everything installed by pip
    (once per content of setup.sh and requirements.txt: the root is kept across runs)."""
    if limits.unavailable():
        pytest.skip(f"Gradescope's limits cannot be emulated here: {limits.unavailable()}")
    with zipfile.ZipFile(zips["hw3"]) as zf:
        # Kept across runs, keyed by what setup.sh installs: a warm run reuses the venv.
        root = kept.folder("gradescope-setup", data=zf.read("setup.sh") + zf.read("requirements.txt"))
        if (root / "ready").is_file():
            return root / "venv"
        shutil.rmtree(root / "venv", ignore_errors=True)  # a set-up that stopped midway
        zf.extractall(root / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # No network here: pip's own configured index stands in for PyTorch's CPU wheel index.
    env.update(AUTOGRADER_ROOT=str(root), GRADER_TORCH_INDEX="")
    started = time.monotonic()
    proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True,
                          timeout=3600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"setup.sh: {time.monotonic() - started:.0f} s")
    assert "ready in" in proc.stdout
    (root / "ready").touch()
    return root / "venv"


def autograder_root(base: Path, zip_path: Path, venv: Path, files: list[Path], created_at: datetime) -> Path:
    """Gradescope's /autograder: source/ (the zip), run_autograder, submission/, metadata."""
    root = base
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "venv").symlink_to(venv)
    (root / "submission").mkdir()
    for path in files:
        (shutil.copytree if path.is_dir() else shutil.copyfile)(path, root / "submission" / path.name)
    metadata = {"id": 1, "created_at": created_at.isoformat(), "users": [{"email": "s@uni.edu", "id": 7,
                "name": "A Student", "sid": SID}], "assignment": {"due_date": created_at.isoformat()}}
    (root / "submission_metadata.json").write_text(json.dumps(metadata))
    return root


# Gradescope's default. Measured under it: 680-690 MB anonymous (import torch, torchvision alone
# is ~385 MB with PyPI's CUDA build); the zip ships sqrtm(Σ_ref), whose eigen solve needed ~170 MB.
MEMORY = limits.GRADESCOPE_MEMORY

CASES = {"good": -1.0, "broken": -0.5, "late": 2.2, "not-computable": -2.0}  # days after the due time


def run_course(course: str, courses, zips, venv, base: Path) -> dict[str, dict]:
    _folder, subs, due = courses[course]
    results = {}
    for case, days in CASES.items():
        root = autograder_root(base / case, zips[course], venv, subs[case], due + timedelta(days=days))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["AUTOGRADER_ROOT"] = str(root)
        run = limits.run_limited([root / "run_autograder"], env=env, cwd=root, timeout=1800, memory_bytes=MEMORY)
        print(f"{course} {case}: {run.summary}")
        assert run.returncode == 0 and run.oom_kills == 0, run.stdout[-2000:] + run.stderr[-2000:]
        data = json.loads((root / "results" / "results.json").read_text())
        jsonschema.validate(data, SCHEMA)
        results[case] = data
    return results


def grader_run_points(course: str, courses, tmp: Path, cache: Path, weights: Path) -> dict[str, float | None]:
    """`grader run` on the same files with the same times: each case as one student."""
    folder, subs, due = courses[course]
    class_dir = tmp / "class"
    times = ["student_id,submitted_at"]
    ids = {}
    for i, (case, days) in enumerate(CASES.items()):
        sid = f"A{7000000 + i}"
        ids[case] = sid
        (class_dir / sid).mkdir(parents=True)
        for path in subs[case]:
            target = class_dir / sid / path.name.replace(SID, sid)
            (shutil.copytree if path.is_dir() else shutil.copyfile)(path, target)
        times.append(f"{sid},{(due + timedelta(days=days)).isoformat()}")
    (tmp / "times.csv").write_text("\n".join(times) + "\n")
    if course == "hw9":  # the progress-report list names the class's ids
        rubric = yaml.safe_load((folder / "rubric.yaml").read_text())
        with (tmp / "progress_reports.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["student_id"], *([sid] for sid in ids.values())])
        rubric["requires"][0]["handed_in"] = str(tmp / "progress_reports.csv")
        for metric in rubric["metrics"].values():
            metric["stats"] = str(folder / metric["stats"])
        rubric_path = tmp / "rubric.yaml"
        rubric_path.write_text(yaml.safe_dump(rubric, sort_keys=False))
    else:
        rubric_path = folder / "rubric.yaml"
    proc = grader("run", class_dir, "--rubric", rubric_path, "--times", tmp / "times.csv", "--out", tmp / "res",
                  "--cache-dir", cache, "--device", "cpu", "--inception-weights", weights, "-q")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    from grader.store import ResultStore

    with ResultStore(tmp / "res") as store:
        stored = {r.student_id: r for r in store.all()}
    return {case: stored[sid].grade.final if stored[sid].grade else None for case, sid in ids.items()}


@pytest.fixture(scope="module")
def graded(courses, zips, venv, inception_weights, tmp_path_factory):
    out = {}
    for course in ("hw3", "hw9"):
        base = tmp_path_factory.mktemp(f"autograder-{course}")
        results = run_course(course, courses, zips, venv, base)
        points = grader_run_points(course, courses, tmp_path_factory.mktemp(f"run-{course}"),
                                   base / "good" / "cache", inception_weights)
        out[course] = (results, points)
    return out


def test_zip_layout(zips):
    for zip_path in zips.values():
        with zipfile.ZipFile(zip_path) as zf:
            names = set(zf.namelist())
            modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        assert {"setup.sh", "run_autograder", "autograder.json", "course/rubric.yaml", "requirements.txt"} <= names
        assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
        assert any(n.startswith("weights/pt_inception") for n in names)
        assert "python/grader/__main__.py" in names
        print(f"{zip_path.name}: {zip_path.stat().st_size / 1e6:.1f} MB")
    hw9 = zipfile.ZipFile(zips["hw9"]).namelist()
    assert {"course/celeba64.npz", "course/progress_reports.csv"} <= set(hw9)


def test_zip_ships_the_reference_root(courses, zips):
    """sqrtm(Σ_ref) of each course's statistics, computed at build time, where the grading's
    cache reads it: the root grading would compute (to round-off: LAPACK's sums follow the
    thread count)."""
    import io

    from grader.files import sha256_file
    from grader.metrics.frechet import load_stats, sqrtm_psd

    for course, stats in (("hw3", "mnist.npz"), ("hw9", "celeba64.npz")):
        path = courses[course][0] / stats
        with zipfile.ZipFile(zips[course]) as zf:
            shipped = np.load(io.BytesIO(zf.read(f"cache/sqrtm/{sha256_file(path)}.npy")))
        expected = sqrtm_psd(load_stats(path)[1])
        np.testing.assert_allclose(shipped, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("course", ["hw3", "hw9"])
def test_points_equal_grader_run(graded, course):
    results, points = graded[course]
    for case, data in results.items():
        if points[case] is None:
            assert "score" not in data, case
            assert all("score" not in t for t in data["tests"]), case
            assert "incomplete" in data["output"].lower()
        else:
            assert data["score"] == pytest.approx(points[case], abs=1e-3), case


def test_hw3_cases(graded):
    results, _points = graded["hw3"]
    good, late, broken, nofid = (results[c] for c in ("good", "late", "broken", "not-computable"))
    assert good["score"] > 0
    fid = next(t for t in good["tests"] if t["name"] == "FID score")
    assert fid["visibility"] == "after_published"  # from the rubric's platforms section
    assert good["leaderboard"][0]["order"] == "asc" and good["leaderboard"][0]["value"] > 0
    assert late["score"] == 0 and late["extra_data"]["late_days"] == 3  # hard deadline
    assert any(t["name"].startswith("Late") for t in late["tests"])
    assert broken["score"] < good["score"]
    assert any("images.count" in t["name"] and "How to fix" in t["output"] for t in broken["tests"])
    assert "score" not in nofid and "FID" in nofid["output"]
    assert "leaderboard" not in nofid


def test_hw9_cases(graded):
    results, _ = graded["hw9"]
    good, late, broken, nofid = (results[c] for c in ("good", "late", "broken", "not-computable"))
    assert len(good["leaderboard"]) == 3
    assert late["extra_data"]["late_days"] == 3 and late["score"] == pytest.approx(good["score"] - 30, abs=1e-3)
    assert broken["score"] < good["score"]
    gan = next(t for t in nofid["tests"] if t["name"] == "FID of GAN samples")
    assert gan["score"] == 0 and "missing" in gan["output"] and gan["visibility"] == "after_published"


def test_checks_only_and_a_missing_ta_file(courses, venv, tmp_path):
    folder, subs, due = courses["hw3"]
    zip_path = tmp_path / "checks.zip"
    proc = grader("autograder", "gradescope", "--rubric", folder / "rubric.yaml", "--checks-only", "-o", zip_path)
    assert proc.returncode == 0, proc.stderr
    assert not any(n.startswith(("weights/", "course/mnist")) for n in zipfile.ZipFile(zip_path).namelist())
    root = autograder_root(tmp_path / "ag", zip_path, venv, subs["broken"], due)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "AUTOGRADER_ROOT": str(root)}
    run = limits.run_limited([root / "run_autograder"], env=env, cwd=root, timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert "score" not in data and "images.count" in json.dumps(data["tests"])
    # A zip whose TA file went missing still writes results.json: a sentence, no score.
    (root / "source" / "autograder.json").write_text(json.dumps({**json.loads(
        (root / "source" / "autograder.json").read_text()), "checks_only": False, "weights": None}))
    shutil.rmtree(root / "results")
    run = limits.run_limited([root / "run_autograder"], env=env, cwd=root, timeout=1800)
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert "score" not in data and "mnist.npz" in data["output"]


def test_build_refuses_what_it_cannot_bundle(courses, inception_weights, tmp_path):
    folder, _, _ = courses["hw3"]
    data = yaml.safe_load((folder / "rubric.yaml").read_text())
    data["metrics"]["fid"]["stats"] = str(tmp_path / "elsewhere" / "mnist.npz")
    (tmp_path / "elsewhere").mkdir()
    synthetic_stats(tmp_path / "elsewhere" / "mnist.npz", 1)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "rubric.yaml").write_text(yaml.safe_dump(data))
    proc = grader("autograder", "gradescope", "--rubric", tmp_path / "course" / "rubric.yaml",
                  "--inception-weights", inception_weights, "-o", tmp_path / "x.zip")
    assert proc.returncode == 2 and "relative to the rubric" in proc.stderr, proc.stderr
    proc = grader("autograder", "gradescope", "--rubric", folder / "rubric.yaml", "--inception-weights",
                  inception_weights, "--stats", "fid=missing.npz",
                  "-o", tmp_path / "y.zip")
    assert proc.returncode == 2 and "missing.npz" in proc.stderr
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "y.zip").exists()
