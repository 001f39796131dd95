"""Run a command the way an autograding platform does: a memory cap, one CPU, no network.

A child of this process's own cgroup v1 memory controller gets `memory.limit_in_bytes`
(Gradescope's default: 768 MB), the command is pinned to one CPU (taskset) and started in a
network namespace of its own (unshare -n: only a loopback that is down). While it runs, the
cgroup's anonymous memory (memory.stat `total_rss`: everything but page cache) is sampled;
afterwards its peak usage (memory.max_usage_in_bytes, page cache included) and whether the
kernel's OOM killer fired are read. Root and a mounted cgroup v1 memory controller are needed:
`unavailable()` says why not, for a test to skip with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
GRADESCOPE_MEMORY = 768 * 1000**2  # "768 MB"


def _own_memory_cgroup() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return MEMORY_ROOT / path.lstrip("/")
    return MEMORY_ROOT


def unavailable() -> str | None:
    """Why a limited run cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "not root: a memory cgroup cannot be made"
    if not (MEMORY_ROOT / "memory.limit_in_bytes").is_file():
        return f"no cgroup v1 memory controller at {MEMORY_ROOT}"
    for tool in ("taskset", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access(_own_memory_cgroup(), os.W_OK):
        return f"{_own_memory_cgroup()} is not writable"
    return None


@dataclass
class LimitedRun:
    returncode: int
    wall_s: float
    peak_bytes: int  # cgroup peak, page cache included
    peak_anon_bytes: int  # sampled peak of the cgroup's anonymous memory
    oom_kills: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> str:
        return (f"exit {self.returncode}, {self.wall_s:.1f} s, peak {self.peak_bytes / 1e6:.0f} MB "
                f"(anonymous {self.peak_anon_bytes / 1e6:.0f} MB), OOM kills {self.oom_kills}")


def _stat(folder: Path) -> dict[str, int]:
    out = {}
    for line in (folder / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = int(value)
    return out


def _oom_kills(folder: Path) -> int:
    for line in (folder / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def run_limited(cmd: list[str], *, memory_bytes: int = GRADESCOPE_MEMORY, cpu: int = 0,
                network: bool = False, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float | None = None) -> LimitedRun:
    """Run `cmd` under the limits; the cgroup is removed afterwards."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    folder = _own_memory_cgroup() / f"grader-limited-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        (folder / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if (folder / "memory.memsw.limit_in_bytes").is_file():
            (folder / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        procs = folder / "cgroup.procs"
        prefix = ["taskset", "-c", str(cpu)] + ([] if network else ["unshare", "-n"])

        def enter() -> None:  # in the child, before exec: join the cgroup
            procs.write_text(str(os.getpid()))

        peak_anon = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_anon
            while not done.is_set():
                try:
                    stat = _stat(folder)
                    peak_anon = max(peak_anon, stat.get("total_rss", 0))
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        start = time.monotonic()
        sampler.start()
        try:
            proc = subprocess.run(prefix + [str(c) for c in cmd], capture_output=True, text=True,
                                  env=env, cwd=cwd, timeout=timeout, preexec_fn=enter, check=False)
        finally:
            done.set()
            sampler.join()
        wall = time.monotonic() - start
        return LimitedRun(proc.returncode, wall, int((folder / "memory.max_usage_in_bytes").read_text()),
                          peak_anon, _oom_kills(folder), proc.stdout, proc.stderr)
    finally:
        for _ in range(50):  # the last task may take a moment to leave
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)
