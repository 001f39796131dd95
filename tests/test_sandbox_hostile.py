"""Real sandboxes, real containers: hostile samplers against both backends.

Each sampler in tests/sandbox_samplers/ runs through ``run_sampler`` with small limits. Every
case must end in a clear Finding (or a clean run), leave no process behind on the host and
no container in the engine, and leave the next test free to run.

The session fixture runs .ci/sandbox-setup.sh (idempotent: it starts dockerd and builds the
Debian base image and root tree once, cached) when the tests run as root, then builds the
image ``grader-sampler:test`` from the repository's Dockerfile.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from grader.sandbox import audit_against_submitted, audit_spec, run_sampler
from grader.sandbox.interface import LABEL
from grader.sandbox.spec import SampleAudit, SampleSpec

ROOT = Path(__file__).resolve().parents[1]
SAMPLERS = Path(__file__).resolve().parent / "sandbox_samplers"
from conftest import TEST_IMAGE

MB = 1024**2


# ---------------------------------------------------------------- helpers


class LoopbackServer:
    """A TCP server on the host's 127.0.0.1 that counts connections (there must be none)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Case:
    """One submission folder with a sampler script, the host's bait files and a token."""

    def __init__(self, tmp_path: Path, script: str):
        self.token = uuid.uuid4().hex
        self.tmp = tmp_path
        self.source = tmp_path / "submission"
        self.source.mkdir()
        shutil.copy(SAMPLERS / script, self.source / script)
        (self.source / "weights").mkdir()
        (self.source / "weights" / "model.txt").write_text("3")
        self.script = script
        # Bait on the host: the rubric's reference stats and another student's folder.
        self.stats = tmp_path / "rubric" / f"stats-{self.token}.npz"
        self.stats.parent.mkdir()
        self.stats.write_bytes(b"reference statistics " + self.token.encode())
        self.other = tmp_path / "students" / f"student-{self.token}"
        self.other.mkdir(parents=True)
        (self.other / "00001.png").write_bytes(b"another student's image")
        self.host_write = tmp_path / f"written-{self.token}.txt"
        self.output = tmp_path / "output"

    def config(self, port: int = 9) -> None:
        (self.source / "probe_config.json").write_text(
            json.dumps(
                {
                    "port": port,
                    "host_files": [str(self.stats), str(self.other / "00001.png")],
                    "host_home": str(Path.home()),
                    "host_write": str(self.host_write),
                    "token": self.token,
                }
            )
        )

    def spec(self, **overrides) -> SampleSpec:
        values = {
            "source": "source",
            "produces": "images",
            "command": f"python3 {self.script} {{output}} {{num}} {{seed}} {self.token}",
            "num": 8,
            "seed": 7,
            "image": TEST_IMAGE,
            "weights": "weights/model.txt",
            "timeout_s": 20,
            "memory_bytes": 256 * MB,
            "cpus": 1,
            "pids": 64,
            "output_max_bytes": 4 * MB,
            "output_max_files": 200,
            "tmp_max_bytes": 16 * MB,
            "log_max_bytes": 16 * 1024,
        }
        values.update(overrides)
        return SampleSpec(**values)

    def run(self, backend: str, **overrides):
        outcome = run_sampler(self.spec(**overrides), self.source, self.output, backend=backend)
        assert_nothing_left(self.token)
        return outcome


def _host_processes_with(token: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ")[:200]
            found.append(f"{entry.name}: {shown!r}")
    return found


def _sandbox_containers() -> list[str]:
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:  # noqa: BLE001 - no engine: no containers can be left over
        return []
    try:
        return [c.name for c in client.containers.list(all=True, filters={"label": LABEL})]
    finally:
        client.close()


def assert_nothing_left(token: str) -> None:
    deadline = time.monotonic() + 1.0  # the kernel's reaping is not instantaneous
    while (left := _host_processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"sampler processes survived on the host: {left}"
    assert _sandbox_containers() == []


def codes(outcome) -> list[str]:
    return sorted(f.code for f in outcome.findings)


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------- well-behaved


def test_well_behaved_sampler_produces_a_valid_set(backend, tmp_path):
    case = Case(tmp_path, "good.py")
    outcome = case.run(backend)
    assert outcome.findings == [], outcome.run.log
    assert outcome.run.backend == backend
    assert outcome.run.exit_code == 0 and not outcome.run.timed_out
    assert "wrote 8 images to /output" in outcome.run.log
    assert files(case.output) == [f"{i:05d}.png" for i in range(1, 9)]
    for path in case.output.iterdir():
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (28, 28))
    assert not list(case.source.glob("pwned*"))


def test_same_seed_same_images_and_the_audit_agrees(backend, tmp_path):
    """The audit reruns K images with the rubric's seed and matches the upload."""
    case = Case(tmp_path, "good.py")
    spec = case.spec(num=8, audit=SampleAudit(count=4, mode="exact", tolerance=0.0))
    # The "uploaded" set: what the student's code produces on their own machine.
    uploaded = tmp_path / "uploaded"
    uploaded.mkdir()
    subprocess.run(
        [sys.executable, "good.py", str(uploaded), "8", "7"], cwd=case.source, check=True
    )
    outcome = run_sampler(audit_spec(spec), case.source, case.output, backend=backend)
    assert outcome.findings == []
    assert files(case.output) == [f"{i:05d}.png" for i in range(1, 5)]
    submitted = sorted(uploaded.iterdir())
    assert audit_against_submitted(case.output, submitted, spec.audit, artifact="images") == []

    # An upload made with another seed is caught, image by image.
    other = tmp_path / "other-seed"
    other.mkdir()
    subprocess.run([sys.executable, "good.py", str(other), "8", "8"], cwd=case.source, check=True)
    found = audit_against_submitted(
        case.output, sorted(other.iterdir()), spec.audit, artifact="images"
    )
    assert [f.code for f in found] == ["sandbox.audit_mismatch"]
    assert "4 of 4 regenerated images differ" in found[0].message


def test_missing_weights_are_a_finding_not_a_run(backend, tmp_path):
    case = Case(tmp_path, "good.py")
    outcome = case.run(backend, weights="weights/missing.pt")
    assert codes(outcome) == ["sandbox.weights_missing"]
    assert outcome.run.exit_code is None and files(case.output) == []


# ---------------------------------------------------------------- hostile


def test_probe_sees_no_network_no_host_files_no_secrets(backend, tmp_path, monkeypatch):
    case = Case(tmp_path, "probe.py")
    server = LoopbackServer()
    case.config(port=server.port)
    monkeypatch.setenv(f"GRADER_TEST_SECRET_{case.token}", f"secret-{case.token}")
    try:
        outcome = case.run(backend)
    finally:
        server.close()
    assert outcome.run.exit_code == 0, outcome.run.log
    report = json.loads((case.output / "probe.json").read_text())

    # Network: nothing but a private loopback; the host's loopback server saw nobody.
    assert report["interfaces"] == ["lo"]
    assert report["connect_loopback"] != "ok"
    assert server.accepted == 0
    assert report["docker_socket"] is False

    # Host files: not the shadow file, not the rubric's stats, not another student's folder.
    assert report["reads"]["/etc/shadow"] in ("PermissionError", "FileNotFoundError")
    for path in (str(case.stats), str(case.other / "00001.png")):
        assert report["reads"][path] == "FileNotFoundError"
    assert report["token_names_found"] == []
    status, listing = report["host_home_listing"]
    host_home = set(os.listdir(Path.home()))
    assert status != "ok" or not (set(listing) & host_home - {".", ".."}), listing

    # Environment: the sandbox's own few variables, none of the host's.
    env = report["env"]
    assert not any(case.token in k or case.token in v for k, v in env.items())
    allowed = {
        "PATH",
        "HOME",
        "LANG",
        "PWD",
        "SHLVL",
        "HOSTNAME",
        "_",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MPLCONFIGDIR",
        "TORCH_HOME",
        "XDG_CACHE_HOME",
    }
    assert set(env) <= allowed, set(env) - allowed
    assert report["uid"] == 10001 and report["cwd"] == "/submission"

    # Writes: only /output and /tmp, never the submission, the root or the host.
    writes = report["writes"]
    assert writes["/tmp/ok.txt"] == "ok" and writes["/output/ok.txt"] == "ok"
    for path, status in writes.items():
        if path not in ("/tmp/ok.txt", "/output/ok.txt"):
            assert status != "ok", path
    assert not case.host_write.exists()
    assert sorted(p.name for p in case.source.iterdir()) == [
        "probe.py",
        "probe_config.json",
        "weights",
    ]


def test_fork_bomb_is_contained(backend, tmp_path):
    case = Case(tmp_path, "fork_bomb.py")
    started = time.monotonic()
    outcome = case.run(backend, timeout_s=3, pids=32)
    assert outcome.run.timed_out
    assert "sandbox.timeout" in codes(outcome)
    if backend == "docker":  # the pids cgroup counts refused forks; rlimits do not
        assert "sandbox.pids" in codes(outcome)
    assert time.monotonic() - started < 60


def test_memory_hog_is_stopped(backend, tmp_path):
    case = Case(tmp_path, "memory_hog.py")
    outcome = case.run(backend, memory_bytes=192 * MB)
    assert "sandbox.memory" in codes(outcome), (codes(outcome), outcome.run.log[-500:])
    assert not outcome.run.timed_out and outcome.run.exit_code != 0
    assert "holding 16 MB" in outcome.run.log


@pytest.mark.parametrize("script", ["spin.py", "sleeper.py"])
def test_endless_sampler_times_out(backend, tmp_path, script):
    case = Case(tmp_path, script)
    outcome = case.run(backend, timeout_s=2)
    assert outcome.run.timed_out
    assert codes(outcome) == ["sandbox.no_output", "sandbox.timeout"]
    assert 2 <= outcome.run.seconds < 10


def test_filling_the_output_hits_its_cap(backend, tmp_path):
    case = Case(tmp_path, "fill_output.py")
    outcome = case.run(backend, output_max_bytes=3 * MB)
    assert "sandbox.output_too_large" in codes(outcome)
    assert "No space left on device" in outcome.run.log
    assert sum(p.stat().st_size for p in case.output.rglob("*")) <= 3 * MB


def test_a_hundred_thousand_files_hit_the_file_cap(backend, tmp_path):
    case = Case(tmp_path, "many_files.py")
    outcome = case.run(backend, output_max_files=150)
    assert "sandbox.too_many_files" in codes(outcome)
    assert "stopped after" in outcome.run.log
    assert len(files(case.output)) <= 150


def test_a_gigabyte_of_stdout_is_truncated(backend, tmp_path):
    case = Case(tmp_path, "shout.py")
    outcome = case.run(backend, timeout_s=60, log_max_bytes=8192)
    assert not outcome.run.timed_out, outcome.run.seconds
    assert outcome.run.exit_code == 0
    assert outcome.run.log_truncated
    assert len(outcome.run.log.encode()) < 8192 + 200
    assert "1,073,741,824" not in outcome.run.log  # counted, but as what was not kept
    assert outcome.run.log.rstrip().endswith("THE END")
    assert codes(outcome) == ["sandbox.log_truncated"]
    assert files(case.output) == ["00001.png"]


def test_symlinks_in_the_output_are_dropped_never_followed(backend, tmp_path):
    case = Case(tmp_path, "symlinks.py")
    case.config()
    outcome = case.run(backend)
    assert outcome.run.exit_code == 0, outcome.run.log
    assert codes(outcome) == ["sandbox.special_file_in_output", "sandbox.symlink_in_output"]
    message = next(f.message for f in outcome.findings if f.code == "sandbox.symlink_in_output")
    assert "00002.png -> /etc/shadow" in message and "4 symbolic link(s)" in message
    assert files(case.output) == ["00001.png", "sub"]
    assert not any(p.is_symlink() for p in case.output.rglob("*"))


def test_killing_pid1_and_the_parent_stays_inside(backend, tmp_path):
    case = Case(tmp_path, "kill_parent.py")
    outcome = case.run(backend)
    # PID 1 of the sandbox cannot be killed from inside; killing its shell ends the run.
    assert "'pid1': 'sent'" in outcome.run.log or "'pid1': 'PermissionError'" in outcome.run.log
    assert outcome.run.exit_code == 137, outcome.run.log
    assert "sandbox.exit_code" in codes(outcome)
    assert "SIGKILL" in next(f.message for f in outcome.findings if f.code == "sandbox.exit_code")


def test_background_processes_do_not_survive(backend, tmp_path):
    case = Case(tmp_path, "leave_behind.py")
    outcome = case.run(backend)  # case.run asserts no process with the token is left
    assert outcome.run.exit_code == 0, outcome.run.log
    assert outcome.run.seconds < 10  # the open stdout of a child does not hold the run
    assert "main process done" in outcome.run.log
    assert [f for f in files(case.output) if f.endswith(".png")] == [
        f"{i:05d}.png" for i in range(1, 9)
    ]
    assert codes(outcome) == []


def test_the_sandbox_still_works_after_the_hostile_ones(backend, tmp_path):
    case = Case(tmp_path, "good.py")
    outcome = case.run(backend, num=3)
    assert outcome.findings == [] and files(case.output) == ["00001.png", "00002.png", "00003.png"]
