"""The Docker backend: one throw-away container per run, through the docker SDK.

Shape of a run:
- The container: the sampler image, ``network_mode=none`` (only ``lo``), read-only root,
  ``cap_drop=ALL`` plus KILL (used only by the root supervisor below), no-new-privileges,
  ``pids_limit``, ``mem_limit`` = ``memswap_limit`` (no swap), ``nano_cpus``, GPUs through a
  device request, the submission bind-mounted read-only at /submission, an empty
  environment, logging driver ``none``, and the label ``grader.sandbox`` so a leftover can
  always be found.
- /output and /tmp are tmpfs mounts with ``size=`` and ``nr_inodes=``: the kernel refuses
  the write that passes the cap (ENOSPC), which a host bind mount cannot do (overlay2's
  ``storage_opt size`` needs xfs with project quota). tmpfs pages are charged to the
  container's memory cgroup, so ``mem_limit`` is the sampler's memory plus both caps.
- PID 1 is docker's init (tini) over a small Python supervisor running as root with only
  CAP_KILL: on SIGUSR1 it kills every other process without forking, which works even when
  a fork bomb has used up the pid limit. The sampler itself runs as ``docker exec`` under
  uid 10001 (no capabilities), so it can signal neither PID 1 nor the supervisor, and the
  container outlives it.
- After the sampler exits or times out: kill every process left (a background process
  never survives), read the memory/pids cgroup counters and the statfs of /output, then
  stream /output out with ``tar`` and extract only regular files on the host (collect.py).
  A tmpfs vanishes with its container, so this copy happens before removal, and
  ``get_archive`` cannot be used: it does not see tmpfs mounts on Docker 20.10.
- The container is removed in a ``finally``, whatever happened.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from grader.sandbox.collect import ChunkReader, Collected, extract_output
from grader.sandbox.interface import (
    LABEL,
    OUTPUT_DIR,
    SANDBOX_UID,
    SUBMISSION_DIR,
    Backend,
    BackendResult,
    OutputUsage,
    SandboxError,
    SandboxJob,
)
from grader.sandbox.logs import LogCapture

CONTROL_TIMEOUT_S = 60  # for API calls other than the sampler's own output stream
KILL_GRACE_S = 15  # after the kill, how long the output stream may take to close
EXTRA_PIDS = 8  # tini, the supervisor and its sleep, the clean-up execs

# PID 1's child, run by python3 of the image as root with CAP_KILL only. On SIGUSR1,
# kill(-1) signals every process but itself and PID 1 in one pass under the kernel's
# task-list lock, so forks cannot slip past it. It never forks: a fork bomb that used up the
# pid limit cannot starve it.
SUPERVISOR = (
    "import os, signal\n"
    "def kill_all(*_):\n"
    "    try:\n"
    "        os.kill(-1, signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass\n"
    "signal.signal(signal.SIGUSR1, kill_all)\n"
    "while True:\n"
    "    signal.pause()\n"
)

# Runs (python3 of the image) as the sampler's uid once the sampler is done: SIGKILL every
# other process of that uid until none is left (kill(-1) reports success while any process
# at all remains, so /proc is the judge), then print the cgroup counters (v1 and v2 names)
# and the statfs of /output. No fork: nothing here can be starved by a pid limit.
CLEANUP = f"""
import os, signal, time
me, uid = os.getpid(), os.getuid()
def live():
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{{pid}}/status") as fh:
                status = dict(l.split(":", 1) for l in fh.read().splitlines() if ":" in l)
        except (OSError, ValueError):
            continue
        if int(status["Uid"].split()[0]) == uid and status["State"].split()[0] not in "ZX":
            found.append(pid)
    return found
print("leftover", len(live()))
for _ in range(500):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    if not live():
        break
    time.sleep(0.02)
print("survivors", len(live()))
for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events",
             "/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events"):
    try:
        print(open(path).read().strip())
    except OSError:
        pass
st = os.statvfs("{OUTPUT_DIR}")
print("statfs", st.f_frsize, st.f_blocks, st.f_bfree, st.f_files, st.f_ffree)
"""


def _docker():
    import docker

    return docker


def _open_exec(api, exec_id: str):
    """Start an exec and return its socket, with no timeout: a sampler may be quiet for an hour."""
    sock = api.exec_start(exec_id, socket=True)
    for s in (sock, getattr(sock, "_sock", None)):
        if s is not None and hasattr(s, "settimeout"):
            s.settimeout(None)
    return sock


def _frames(sock, stderr_sink: LogCapture | None = None):
    """Yield an exec's stdout chunks as they come; stderr goes to ``stderr_sink``, or is
    kept with stdout when none is given."""
    from docker.utils.socket import frames_iter

    try:
        for stream_id, data in frames_iter(sock, tty=False):
            if stream_id == 2 and stderr_sink is not None:
                stderr_sink.feed(data)
            else:
                yield data
    except OSError:
        return  # the connection closed under us (the container was killed): end of output
    finally:
        sock.close()


class DockerBackend(Backend):
    name = "docker"

    def unavailable_reason(self) -> str | None:
        try:
            docker = _docker()
        except ImportError:
            return "the docker Python package is not installed"
        try:
            client = docker.from_env(timeout=10)
            client.ping()
            client.close()
        except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means "not here"
            return f"no Docker engine answers ({type(exc).__name__}: {exc})"
        return None

    # ------------------------------------------------------------------ container

    def _container_args(self, job: SandboxJob, source_dir: Path, run_id: str, ncpu: int) -> dict:
        docker = _docker()
        device_requests = None
        if job.gpus:
            count = -1 if job.gpus == "all" else int(job.gpus)
            device_requests = [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]
        memory = job.memory_bytes + job.output_max_bytes + job.tmp_max_bytes
        return {
            "image": job.image,
            "command": ["python3", "-c", SUPERVISOR],
            "name": f"grader-sandbox-{run_id}",
            "hostname": "sandbox",
            "labels": {LABEL: "1", f"{LABEL}.run": run_id},
            "init": True,
            "user": "0:0",
            "environment": {},
            "working_dir": SUBMISSION_DIR,
            "network_mode": "none",
            "read_only": True,
            "cap_drop": ["ALL"],
            "cap_add": ["KILL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": job.pids + EXTRA_PIDS,
            "mem_limit": memory,
            "memswap_limit": memory,
            "nano_cpus": int(min(job.cpus, ncpu) * 1e9),
            "device_requests": device_requests,
            "tmpfs": {
                OUTPUT_DIR: (
                    f"size={job.output_max_bytes},nr_inodes={job.output_max_files + 2},"
                    f"mode=0700,uid={SANDBOX_UID},gid={SANDBOX_UID},nosuid,nodev,noexec"
                ),
                "/tmp": f"size={job.tmp_max_bytes},mode=1777,nosuid,nodev,exec",
            },
            "mounts": [
                docker.types.Mount(SUBMISSION_DIR, str(source_dir), type="bind", read_only=True)
            ],
            "log_config": docker.types.LogConfig(type="none"),
        }

    def image_problem(self, image: str) -> str | None:
        docker = _docker()
        try:
            client = docker.from_env(timeout=CONTROL_TIMEOUT_S)
            try:
                client.images.get(image)
            finally:
                client.close()
        except docker.errors.ImageNotFound:
            return _image_missing(image)
        except docker.errors.DockerException as exc:
            return f"docker: {exc}"
        return None

    def run(self, job: SandboxJob, source_dir: Path, output_dir: Path) -> BackendResult:
        docker = _docker()
        try:
            client = docker.from_env(timeout=CONTROL_TIMEOUT_S)
            client.images.get(job.image)
            ncpu = int(client.info().get("NCPU") or 1)
        except docker.errors.ImageNotFound:
            raise SandboxError(_image_missing(job.image)) from None
        except docker.errors.DockerException as exc:
            raise SandboxError(f"docker: {exc}") from None

        run_id = uuid.uuid4().hex[:12]
        container = None
        try:
            container = client.containers.create(
                **self._container_args(job, source_dir, run_id, ncpu)
            )
            container.start()
            return self._run_in(client, container, job, output_dir)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"docker sandbox failed: {exc}") from None
        finally:
            if container is not None:
                try:
                    container.remove(force=True, v=True)
                except docker.errors.NotFound:
                    pass
            client.close()

    # ------------------------------------------------------------------ one run

    def _run_in(self, client, container, job: SandboxJob, output_dir: Path) -> BackendResult:
        api = client.api
        user = f"{SANDBOX_UID}:{SANDBOX_UID}"
        log = LogCapture(job.log_max_bytes)
        exec_id = api.exec_create(
            container.id,
            ["/bin/sh", "-c", job.command],
            user=user,
            workdir=SUBMISSION_DIR,
            environment=job.environment(),
            stdout=True,
            stderr=True,
        )["Id"]

        sock = _open_exec(api, exec_id)
        start = time.monotonic()
        reader = threading.Thread(target=log.drain, args=(_frames(sock),), daemon=True)
        reader.start()

        # The exec ends when the sampler's main process does. Its output stream may stay
        # open longer (a background child holding stdout), so poll the exec, not the stream.
        timed_out, exit_code, delay, closed_at = False, None, 0.05, None
        while True:
            state = api.exec_inspect(exec_id)
            if not state.get("Running") and state.get("ExitCode") is not None:
                exit_code = state["ExitCode"]
                break
            # Not started yet reads the same as never started; a closed stream tells them apart.
            if not state.get("Running") and not reader.is_alive():
                closed_at = closed_at or time.monotonic()
                if time.monotonic() - closed_at > 2:
                    break
            if time.monotonic() - start >= job.timeout_s:
                timed_out = True
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        seconds = time.monotonic() - start

        notes: list[str] = []
        report = self._kill_everything(container, user, notes)
        reader.join(KILL_GRACE_S)
        if reader.is_alive():
            notes.append("the sampler's output stream did not close after the kill")
        if timed_out:
            exit_code = api.exec_inspect(exec_id).get("ExitCode")

        notes.append("clean-up: " + " | ".join(report.strip().splitlines()))
        if _counter(report, "survivors"):
            notes.append("some sampler processes survived the clean-up")
        oom_kills = _counter(report, "oom_kill")
        pids_max = _counter(report, "max")
        usage = OutputUsage.parse(_after(report, "statfs"))

        collected = self._collect(api, container, user, job, output_dir, notes)
        return BackendResult(
            backend=self.name,
            exit_code=exit_code,
            timed_out=timed_out,
            seconds=seconds,
            log=log,
            collected=collected,
            memory_exhausted=oom_kills > 0 and exit_code != 0,
            pids_exhausted=pids_max > 0,
            output_usage=usage,
            notes=notes,
        )

    def _kill_everything(self, container, user: str, notes: list[str]) -> str:
        """Kill every sampler process; return the clean-up report (cgroup counters, statfs)."""
        docker = _docker()
        try:
            container.kill(signal="SIGUSR1")  # the supervisor's kill needs no free pid
        except docker.errors.APIError as exc:
            notes.append(f"supervisor signal failed: {exc}")
        last = ""
        for _ in range(50):
            try:
                result = container.exec_run(["python3", "-c", CLEANUP], user=user, demux=False)
                last = (result.output or b"").decode("utf-8", errors="replace")
                if result.exit_code == 0 and "statfs" in last:
                    return last
            except docker.errors.APIError as exc:
                last = str(exc)
            time.sleep(0.1)  # e.g. no pid free yet for the exec: the supervisor is at work
        notes.append(f"clean-up exec failed: {last.strip()[-300:]}")
        return ""

    def _collect(self, api, container, user, job: SandboxJob, output_dir: Path, notes) -> Collected:
        docker = _docker()
        errors = LogCapture(4096)
        try:
            exec_id = api.exec_create(
                container.id,
                ["tar", "-C", OUTPUT_DIR, "--hard-dereference", "-cf", "-", "."],
                user=user,
                stdout=True,
                stderr=True,
            )["Id"]
            stream = ChunkReader(_frames(_open_exec(api, exec_id), stderr_sink=errors))
            collected = extract_output(
                stream, output_dir, job.output_max_files, job.output_max_bytes
            )
        except docker.errors.APIError as exc:
            collected = Collected(error=f"the output could not be copied out: {exc}")
        if errors.total:
            notes.append("tar: " + errors.text().strip())
        return collected


def _counter(report: str, key: str) -> int:
    total = 0
    for line in report.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            total += int(parts[1])
    return total


def _after(report: str, key: str) -> str:
    for line in report.splitlines():
        if line.startswith(key + " "):
            return line[len(key) + 1 :]
    return ""


def _image_missing(image: str) -> str:
    return (
        f"the sandbox image {image!r} is not built: run .ci/sandbox-setup.sh, or "
        f"docker build -t {image} - < Dockerfile"
    )
