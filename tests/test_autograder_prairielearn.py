"""The PrairieLearn question for Lab6, end to end, with no PrairieLearn account.

`grader autograder prairielearn` writes the question; its entrypoint then grades uploads in
PrairieLearn's layout (/grade/student, /grade/tests, /grade/results as folders of their own),
under the grader host's default limits (2 GiB, one CPU, no network), with the evaluator the
Lab6 tests train (cached, not retrained). Each results.json is validated against a JSON Schema
written from PrairieLearn's documentation, stays under 1 MB, and the exit code is 0 for every
upload, broken or not; points equal `grader run`'s on the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import iclevr
import jsonschema
import limits
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "prairielearn_results.schema.json").read_text())
PL_MEMORY = 2 * 1024**3  # the grader host's default container memory

pytestmark = pytest.mark.slow


def grader(*args, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=1800, check=False)


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return out


@pytest.fixture(scope="module")
def lab6(tmp_path_factory, evaluator_checkpoint):
    root = tmp_path_factory.mktemp("lab6-pl")
    course = root / "course"
    course.mkdir()
    labels = iclevr.write_label_files(course, n=32, seed=800)
    shutil.copyfile(evaluator_checkpoint, course / "checkpoint.pth")
    shutil.copyfile(ROOT / "rubrics" / "lab6.yaml", course / "rubric.yaml")  # checkpoint.pth beside it
    test, new = labels["test"], labels["new_test"]
    subs = root / "subs"
    good = iclevr.render_all(test, 810), iclevr.render_all(new, 811)
    iclevr.write_lab6_submission(subs / "0810001", *good, seed=1)
    iclevr.write_lab6_submission(subs / "0810002", good[0][:31], good[1], seed=3)
    (subs / "0810002" / "test_grid.png").unlink()
    uploads = root / "uploads"
    uploads.mkdir()
    zip_folder(subs / "0810001", uploads / "good.zip")
    zip_folder(subs / "0810002", uploads / "broken.zip")
    with zipfile.ZipFile(uploads / "nothing.zip", "w") as zf:
        zf.writestr("notes.txt", "I ran out of time\n")
    (uploads / "garbage.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    question = root / "question"
    proc = grader("autograder", "prairielearn", "--rubric", course / "rubric.yaml", "-o", question)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"root": root, "question": question, "subs": subs, "uploads": uploads, "course": course}


def test_question_layout(lab6):
    q = lab6["question"]
    info = json.loads((q / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and options["enabled"] is True
    assert options["entrypoint"] == "/grade/tests/run_grader" and options["image"]
    assert 0 < options["timeout"] <= 600 and options["enableNetworking"] is False
    assert os.access(q / "tests" / "run_grader", os.X_OK)
    assert 'file-names="submission.zip"' in (q / "question.html").read_text()
    dockerfile = (q / "image" / "Dockerfile").read_text()
    assert dockerfile.splitlines()[2].startswith("FROM prairielearn/grader-python")
    assert "/venv/bin/pip install" in dockerfile and (q / "image" / "python" / "grader" / "__main__.py").is_file()
    for name in ("rubric.yaml", "checkpoint.pth", "test.json", "new_test.json", "objects.json"):
        assert (q / "tests" / "course" / name).is_file(), name


def grade_upload(lab6, upload: Path, tmp: Path) -> tuple[dict, int]:
    """The entrypoint on one upload, in PrairieLearn's /grade layout, under the host's limits."""
    root = tmp / "grade"
    shutil.copytree(lab6["question"] / "tests", root / "tests")
    (root / "student").mkdir(parents=True)
    shutil.copyfile(upload, root / "student" / "submission.zip")
    (root / "data").mkdir()
    (root / "data" / "data.json").write_text("{}")
    env = {**os.environ, "GRADER_PYTHON": sys.executable, "GRADER_PL_ROOT": str(root), "PYTHONPATH": str(ROOT),
           "GRADER_OFFLINE": "1", "GRADER_CACHE_DIR": str(tmp / "cache")}
    if limits.unavailable():
        pytest.skip(f"the grader host's limits cannot be emulated here: {limits.unavailable()}")
    run = limits.run_limited([root / "tests" / "run_grader"], memory_bytes=PL_MEMORY, env=env, timeout=900)
    print(f"{upload.name}: {run.summary}")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]  # PrairieLearn reads only exit 0
    path = root / "results" / "results.json"
    size = path.stat().st_size
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    assert size < 1_000_000
    return data, size


@pytest.fixture(scope="module")
def graded(lab6, tmp_path_factory):
    out = {}
    for name in ("good", "broken", "nothing", "garbage"):
        out[name] = grade_upload(lab6, lab6["uploads"] / f"{name}.zip", tmp_path_factory.mktemp(f"pl-{name}"))
    return out


@pytest.fixture(scope="module")
def grader_run(lab6, tmp_path_factory):
    from grader.store import ResultStore

    out = tmp_path_factory.mktemp("pl-run")
    proc = grader("run", lab6["subs"], "--rubric", lab6["course"] / "rubric.yaml", "--out", out / "res", "--device",
                  "cpu", "-q")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    with ResultStore(out / "res") as store:
        return {r.student_id: r for r in store.all()}


def test_good_upload(graded, grader_run):
    data, size = graded["good"]
    run = grader_run["0810001"].grade
    assert data["gradable"] is True
    assert data["score"] == pytest.approx(run.final / run.max_points, abs=1e-5)
    assert [t["name"] for t in data["tests"]] == [line.label for line in run.lines]
    accuracy = next(t for t in data["tests"] if t["name"] == "Accuracy on test.json")
    assert accuracy["max_points"] == 20 and 0 <= accuracy["points"] <= 20
    assert sorted(i["label"] for i in data["images"]) == ["Grid of the images for new_test.json",
                                                          "Grid of the images for test.json"]
    print(f"good upload: results.json {size / 1e3:.0f} kB")


def test_broken_upload(graded, grader_run):
    data, _ = graded["broken"]
    run = grader_run["0810002"].grade
    assert data["gradable"] is True and data["score"] == pytest.approx(run.final / run.max_points, abs=1e-5)
    missing = next(t for t in data["tests"] if t["name"] == "Missing part of the submission")
    assert missing["points"] < 0 and "How to fix" in missing["output"]
    assert len(data["images"]) == 1


def test_nothing_gradable(graded):
    for name in ("nothing", "garbage"):
        data, _ = graded[name]
        assert data["gradable"] is False and data["format_errors"], name
        assert "score" not in data


def test_a_missing_evaluator_still_exits_0(lab6, tmp_path):
    question = tmp_path / "q"
    shutil.copytree(lab6["question"], question)
    (question / "tests" / "course" / "checkpoint.pth").unlink()
    lab6 = {**lab6, "question": question}
    data, _ = grade_upload(lab6, lab6["uploads"] / "good.zip", tmp_path)
    assert data["gradable"] is False and "checkpoint.pth" in json.dumps(data["format_errors"])


def test_rubric_timeout_is_capped():
    from grader.errors import RubricError
    from grader.rubric import parse_rubric

    text = (ROOT / "rubrics" / "lab6.yaml").read_text()
    data = yaml.safe_load(text)
    data["platforms"] = {"prairielearn": {"timeout_s": 900}}
    with pytest.raises(RubricError, match="platforms.prairielearn.timeout_s"):
        parse_rubric(yaml.safe_dump(data))
    data["platforms"] = {"gradescope": {"lines": {"fid": "visible"}, "leaderboard": ["accuracy"]}}
    with pytest.raises(RubricError) as err:
        parse_rubric(yaml.safe_dump(data))
    assert "platforms.gradescope.lines.fid" in str(err.value) and "leaderboard.0" in str(err.value)
