"""JUnit XML from `grader check --junit` and `grader run --junit`, and the example CI workflow's
own command, run as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from grader.examples import drawn_digits, write_hw3_submission

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "github-grader-check.yml"


def grader(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def parse_junit(path: Path) -> ET.Element:
    """The elements and attributes the JUnit schema requires, checked; the root returned."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        assert suite.get("name")
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in cases)
        children = [c.tag for c in suite]
        assert "properties" not in children[1:], "properties come before the test cases"
        for case in cases:
            assert case.get("name") and case.get("classname")
            for outcome in case.findall("failure") + case.findall("error"):
                assert outcome.get("message")
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in root.iter("testsuite"))
    return root


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    """A HW3 hand-in with 17 of its 30 images missing and a folder inside the zip."""
    out = tmp_path_factory.mktemp("junit") / "A0123456"
    digits = drawn_digits(38)
    write_hw3_submission(out, "A0123456", digits[:30], digits[30:], drop=17, folder="images/")
    return out


def test_check_junit_has_one_case_per_line_and_per_problem(broken, tmp_path):
    out = tmp_path / "check.xml"
    proc = grader("check", broken, "--rubric", "hw3", "--no-metrics", "--junit", out, "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    root = parse_junit(out)
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    lines = result["grade"]["lines"]
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    assert errors and lines
    assert [c.get("name") for c in cases if c.get("classname").endswith(".grade")] == [line["label"] for line in lines]
    findings = [c for c in cases if c.get("classname").endswith(".findings")]
    assert len(findings) == len(errors)
    for case, finding in zip(findings, errors):
        failure = case.find("failure")
        assert failure.get("message") == finding["message"]
        assert "How to fix:" in failure.text
    fid = next(c for c in cases if c.get("name") == "FID score")
    assert fid.find("error").get("type") == "incomplete"  # --no-metrics: not computed, never a number


def test_run_junit_has_a_suite_per_student(broken, tmp_path):
    subs = tmp_path / "subs"
    digits = drawn_digits(38, seed=3)
    write_hw3_submission(subs / "A0000002", "A0000002", digits[:30], digits[30:])
    (subs / "A0123456").mkdir(parents=True)
    for p in broken.iterdir():
        (subs / "A0123456" / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "run.xml"
    proc = grader("run", subs, "--rubric", "hw3", "--no-metrics", "--out", tmp_path / "res", "--junit", out, "-q")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr  # graded (late: zero) or incomplete (no FID)
    root = parse_junit(out)
    assert sorted(s.get("name") for s in root.findall("testsuite")) == ["A0000002", "A0123456"]


def test_the_example_workflow_command_runs_as_written(broken, tmp_path):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["check"]["steps"]
    (command,) = [s["run"] for s in steps if str(s.get("run", "")).startswith("grader check")]
    uploaded = next(s for s in steps if "upload-artifact" in s.get("uses", ""))["with"]["path"].split()
    repo = tmp_path / "student-repo"
    (repo / "submission").mkdir(parents=True)
    for p in broken.iterdir():
        (repo / "submission" / p.name).write_bytes(p.read_bytes())
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "grader").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grader "$@"\n')
    (shim / "grader").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1"}
    env.pop("GRADER_RUBRIC", None)
    proc = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the build fails: the hand-in has problems
    for name in uploaded:
        assert (repo / name).is_file(), name
    assert "images.count" in (repo / "grader-junit.xml").read_text()
    parse_junit(repo / "grader-junit.xml")
