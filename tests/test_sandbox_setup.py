"""`python -m pytest` leaves the machine as it found it: the sandbox fixture runs no package
manager and starts no daemon unless GRADER_TEST_SETUP_SANDBOX=1, and a daemon the set-up
started is stopped when the session ends. The real fixture runs in a pytest subprocess whose
PATH puts recording stubs first for apt-get, debootstrap, dockerd and docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _alive

ROOT = Path(__file__).resolve().parents[1]

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{record}"
"""
STUBS = {
    "apt-get": STUB,
    "debootstrap": STUB + "exit 1\n",  # the set-up stops here: nothing is ever bootstrapped
    # A daemon that stays up until it is stopped; `docker info` answers once it has started.
    "dockerd": STUB + 'echo $$ > "{marker}"\nexec sleep 300\n',
    "docker": STUB + '[ "$1" = info ] && [ -e "{marker}" ] && exit 0\nexit 1\n',
}

PROBE = """
import json, os
from pathlib import Path

def test_probe(sandbox_host):
    Path(os.environ["PROBE_OUT"]).write_text(json.dumps(sandbox_host))
"""


def run_fixture(tmp_path: Path, opt_in: bool) -> tuple[list[str], dict, Path]:
    """The real `sandbox_host` fixture in a pytest session of its own; (the stubs called, the
    reasons it yielded, its cache folder)."""
    stubs, record, cache = tmp_path / "bin", tmp_path / "calls.txt", tmp_path / "cache"
    stubs.mkdir()
    for name, text in STUBS.items():
        stub = stubs / name
        stub.write_text(text.format(record=record, marker=tmp_path / "dockerd-up"))
        stub.chmod(0o755)
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_TEST_SETUP_SANDBOX", "GRADER_SANDBOX_ROOTFS")}
    env.update(
        PATH=f"{stubs}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")]),
        DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}",  # never the machine's own engine
        GRADER_SANDBOX_CACHE=str(cache),
        PROBE_OUT=str(tmp_path / "reasons.json"),
    )
    if opt_in:
        env["GRADER_TEST_SETUP_SANDBOX"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    calls = record.read_text().splitlines() if record.exists() else []
    return calls, json.loads((tmp_path / "reasons.json").read_text()), cache


def test_without_the_opt_in_nothing_is_installed_or_started(tmp_path):
    calls, reasons, _ = run_fixture(tmp_path, opt_in=False)
    assert calls == []  # no apt-get, debootstrap, dockerd, not even `docker info`
    assert "sudo bash .ci/sandbox-setup.sh" in reasons["docker"]
    assert "GRADER_TEST_SETUP_SANDBOX=1" in reasons["docker"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the opt-in set-up runs only as root")
def test_with_the_opt_in_the_set_up_runs_and_its_daemon_is_stopped(tmp_path):
    calls, reasons, cache = run_fixture(tmp_path, opt_in=True)
    names = [c.split()[0] for c in calls]
    assert "dockerd" in names and "debootstrap" in names  # the stubs do see a set-up
    assert ".ci/sandbox-setup.sh failed" in reasons["docker"]  # the stub debootstrap failed
    pid = int((tmp_path / "dockerd-up").read_text())
    assert not _alive(pid)  # the session stopped the daemon it started
    assert not (cache / "dockerd.pid").exists()
