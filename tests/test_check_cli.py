"""`grader check` end to end: real example submissions written by `grader example`, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main

ROOT = Path(__file__).resolve().parents[1]
HW3 = str(ROOT / "rubrics" / "hw3.yaml")


def grader(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed console script, in a real process (exit codes as a user sees them)."""
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "NO_COLOR": "1"}, check=False)


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def valid_hw3(tmp_path_factory, mnist_dir) -> Path:
    """A valid, full-size HW3 submission (10,000 real MNIST digits) written by `grader example hw3`."""
    out = tmp_path_factory.mktemp("valid") / "A0000001"
    res = CliRunner().invoke(main, ["example", "hw3", str(out), "--mnist", str(mnist_dir)])
    assert res.exit_code == 0, res.output
    return out


def test_valid_submission_passes_with_exit_0(valid_hw3):
    before = snapshot(valid_hw3.parent)
    res = grader("check", str(valid_hw3), "--rubric", HW3, "--no-metrics")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verdict: OK" in res.stdout
    assert "10,000 files" in res.stdout
    assert snapshot(valid_hw3.parent) == before  # nothing written beside the submission


def test_json_output(valid_hw3):
    res = grader("check", str(valid_hw3), "--rubric", HW3, "--no-metrics", "--json")
    data = json.loads(res.stdout)
    assert res.returncode == 0 and data["status"] == "clean"
    assert {a["name"]: a["status"] for a in data["artifacts"]} == {"images": "ok", "source": "ok", "process": "ok"}
    assert data["metrics"][0]["skipped"].startswith("metrics were turned off")


def test_one_file_checks_that_artifact_only(valid_hw3):
    res = grader("check", str(valid_hw3 / "A0000001.zip"), "--rubric", HW3, "--no-metrics", "--json")
    data = json.loads(res.stdout)
    assert res.returncode == 0, res.stdout
    assert {a["name"]: a["status"] for a in data["artifacts"]} == {
        "images": "ok", "source": "not_given", "process": "not_given"}
    grid = grader("check", str(valid_hw3 / "A0000001_process.png"), "--rubric", HW3, "--json")
    assert grid.returncode == 0, grid.stdout
    assert {a["name"]: a["status"] for a in json.loads(grid.stdout)["artifacts"]}["process"] == "ok"


@pytest.mark.parametrize("broken,code", [
    ("count", "images.missing"),
    ("junk", "zip.junk"),
    ("nested", "zip.wrapping_folder"),
    ("corrupt", "images.corrupt"),
    ("no-grid", "submission.missing_artifact"),
    ("weights", "source.forbidden_file"),
])
def test_broken_submissions_exit_1_with_their_finding(tmp_path, mnist_dir, broken, code):
    out = tmp_path / "sub"
    res = CliRunner().invoke(main, ["example", "hw3", str(out), "--images", "10000", "--broken", broken,
                                    "--mnist", str(mnist_dir)])
    assert res.exit_code == 0, res.output
    before = snapshot(tmp_path)
    checked = grader("check", str(out), "--rubric", HW3, "--no-metrics", "--json")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    codes = {f["code"] for f in json.loads(checked.stdout)["findings"]}
    assert code in codes, codes
    assert snapshot(tmp_path) == before


def test_not_a_zip_and_empty_zip(tmp_path):
    fake = tmp_path / "A0000001.zip"
    fake.write_bytes(b"this is not a zip file at all" * 10)
    res = grader("check", str(fake), "--rubric", HW3, "--no-metrics", "--json")
    # Not a zip: it matches no artifact by content, so it is reported, not silently accepted.
    assert res.returncode == 1
    codes = {f["code"] for f in json.loads(res.stdout)["findings"]}
    assert codes & {"submission.unexpected_file", "zip.not_a_zip"}
    empty = tmp_path / "B0000002.zip"
    zipfile.ZipFile(empty, "w").close()
    res = grader("check", str(empty), "--rubric", HW3, "--no-metrics", "--json")
    assert res.returncode == 1


def test_usage_errors_exit_2(tmp_path, valid_hw3):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nartifacts:\n  images:\n    kind: image_set\n    count: many\n")
    res = grader("check", str(valid_hw3), "--rubric", str(bad))
    assert res.returncode == 2 and "artifacts.images.count" in res.stderr and "'many'" in res.stderr
    res = grader("check", str(valid_hw3), "--rubric", HW3, "--stats", "fid=" + str(tmp_path / "none.npz"))
    assert res.returncode == 2 and "none.npz" in res.stderr
    res = grader("check", str(tmp_path / "missing.zip"), "--rubric", HW3)
    assert res.returncode == 2


def test_fid_skipped_with_a_reason_when_stats_absent(valid_hw3):
    res = grader("check", str(valid_hw3 / "A0000001.zip"), "--rubric", HW3, "--json")
    data = json.loads(res.stdout)
    assert data["metrics"][0]["value"] is None
    assert "mnist.npz" in data["metrics"][0]["skipped"]


def test_expected_states_the_configured_rules_not_the_description(tmp_path):
    """The rubric says count 100; its free-text description still says 10,000. The Expected line
    of `grader check` and of the page states the rules themselves; the description is a note."""
    import yaml

    data = yaml.safe_load(Path(HW3).read_text())
    data["artifacts"]["images"]["count"] = 100
    rubric = tmp_path / "hw3_100.yaml"
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    sub = tmp_path / "A0000001"
    res = CliRunner().invoke(main, ["example", "hw3", str(sub), "--images", "99"])
    assert res.exit_code == 0, res.output
    page = tmp_path / "page.html"
    res = grader("check", str(sub), "--rubric", str(rubric), "--no-metrics", "--html", str(page))
    assert res.returncode == 1, res.stdout + res.stderr
    expected = "100 images named 00001.png ... 00100.png; each PNG, 28x28 pixels, mode RGB; in a zip"
    assert f"expected: {expected}" in res.stdout
    assert "note: exactly 10,000 RGB PNGs" in res.stdout  # the description, shown as a note only
    assert "found 99 images; expected 100" in res.stdout
    html = page.read_text(encoding="utf-8")
    assert f"Expected: {expected}" in html and "Note: exactly 10,000 RGB PNGs" in html
    assert "Expected: exactly 10,000" not in html
