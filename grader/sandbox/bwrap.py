"""The bubblewrap backend: the Docker backend's limits from namespaces and rlimits alone.

For hosts without a Docker engine (HPC login nodes, laptops). Needs ``bwrap``, util-linux
(``unshare``, ``mount``, ``setpriv``, ``prlimit``), GNU tar, and user namespaces.

Process tree of one run::

    grader ── [setpriv --pdeathsig KILL] unshare --mount (root) | --user --map-root-user --mount
               └─ holder (sh, trusted, HOLDER below): mounts a size- and inode-capped tmpfs
                  for /output, binds the submission (and the root tree) under the stage folder
                  └─ [setpriv to uid 65534 when the grader is root] bwrap --unshare-all
                        --unshare-user --disable-userns --die-with-parent ...
                     └─ pid 1 of a new pid namespace
                        └─ prlimit --nproc --as --fsize --core=0 -- /bin/sh -c COMMAND

- The holder's mount namespace owns the /output tmpfs, so the output outlives the sandbox:
  once bwrap has returned (its pid namespace gone, so no sampler process is left), the
  holder streams it out with tar on a pipe and the grader extracts it (collect.py).
- Nothing of the host is visible but the read-only system folders (/usr, the /lib* and /bin
  links, a short list from /etc; never /home, /root, /etc/shadow) or a root tree
  (``GRADER_SANDBOX_ROOTFS``, e.g. the Debian tree .ci/sandbox-setup.sh unpacks), the
  submission read-only, a capped /tmp and the /output tmpfs. The environment is cleared.
  Network: a new network namespace holds only ``lo``.
- Limits: RLIMIT_NPROC (set inside the sandbox's own user namespace, where the kernel counts
  only the sandbox's processes), RLIMIT_AS for memory (not with GPUs: CUDA reserves huge
  address ranges), RLIMIT_FSIZE, the tmpfs caps, and the wall-clock timeout, which kills
  bwrap, whose ``--die-with-parent`` child is the pid namespace's init: its death kills
  every process in the namespace. There is no CPU-share cap without cgroups.
- Run as root, the sandbox is first dropped to uid 65534: the kernel never applies
  RLIMIT_NPROC to processes of host uid 0, even inside a user namespace.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from grader.sandbox.collect import Collected, extract_output
from grader.sandbox.interface import (
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

ROOTFS_ENV = "GRADER_SANDBOX_ROOTFS"  # a root tree to use instead of the host's /usr
RO_PATHS_ENV = "GRADER_SANDBOX_RO_PATHS"  # extra read-only host paths, os.pathsep-separated
UNPRIVILEGED_UID = 65534  # host uid the sandbox runs as when the grader is root
HOLDER_GRACE_S = 120  # after the sampler, how long the holder may take to copy the output
TOOLS = ("bwrap", "unshare", "mount", "tar", "stat")

# Host /etc entries a Python sampler may need; nothing with secrets or host identity.
HOST_ETC = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "ssl",
    "ca-certificates",
    "fonts",
    "mime.types",
    "matplotlibrc",
)
HOST_TOP = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ROOTFS_TOP = HOST_TOP + ("etc", "opt", "var")

_MEMORY_PATTERNS = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|Unable to allocate|out of memory",
)

# The trusted holder (POSIX sh). "$@" is the bwrap command line. Its own messages go to
# $S/holder.log; the sampler's stdout/stderr are inherited. The tar pipe arrives as stdin
# (dash cannot name fds above 9) and moves to fd 9; the sandbox gets /dev/null instead.
HOLDER = r"""
set -u
exec 9>&0 0</dev/null
mount -t tmpfs -o "size=$OUT_SIZE,nr_inodes=$OUT_INODES,mode=0777,nosuid,nodev,noexec" \
    grader-output "$S/output" 2>>"$S/holder.log" || exit 90
mount --bind "$SRC" "$S/submission" 2>>"$S/holder.log" || exit 91
if [ -n "$ROOTFS" ]; then mount --rbind "$ROOTFS" "$S/root" 2>>"$S/holder.log" || exit 92; fi
"$@" 9>&- 3>"$S/started" &
echo $! >"$S/sandbox.pid"
wait $! 2>>"$S/holder.log"
echo $? >"$S/exit_code"
stat -f -c '%S %b %f %c %d' "$S/output" >"$S/statfs" 2>>"$S/holder.log"
tar -C "$S/output" --hard-dereference -cf - . >&9 2>>"$S/holder.log"
"""


STARTER = 'printf started >&3 && exec 3>&- && exec /bin/sh -c "$0"'


def _passwd() -> tuple[str, str]:
    passwd = (
        "root:x:0:0::/nonexistent:/usr/sbin/nologin\n"
        f"sampler:x:{SANDBOX_UID}:{SANDBOX_UID}::/tmp:/bin/sh\n"
    )
    group = f"root:x:0:\nsampler:x:{SANDBOX_UID}:\n"
    return passwd, group


class BwrapBackend(Backend):
    name = "bwrap"

    def __init__(self, rootfs: Path | str | None = None, ro_paths: list[str] | None = None):
        env_root = os.environ.get(ROOTFS_ENV) or None
        self.rootfs = Path(rootfs or env_root).resolve() if (rootfs or env_root) else None
        if ro_paths is None:
            ro_paths = [p for p in os.environ.get(RO_PATHS_ENV, "").split(os.pathsep) if p]
        self.ro_paths = [str(Path(p).resolve()) for p in ro_paths]
        self.as_root = os.geteuid() == 0

    # ------------------------------------------------------------------ availability

    def unavailable_reason(self) -> str | None:
        tools = TOOLS + (("setpriv",) if self.as_root else ())
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            return f"missing {', '.join(missing)} (apt-get install bubblewrap util-linux tar)"
        if self.rootfs is not None and not (self.rootfs / "usr").is_dir():
            return f"{ROOTFS_ENV}={self.rootfs} is not a root tree (no usr/ folder)"
        return _probe(self.rootfs, tuple(self.ro_paths), self.as_root)

    # ------------------------------------------------------------------ command lines

    def _system_binds(self, stage: Path) -> list[str]:
        args: list[str] = []
        if self.rootfs is None:
            base, names = Path("/"), HOST_TOP
        else:
            base, names = self.rootfs, ROOTFS_TOP
        for name in names:
            path = base / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{name}"]
            elif path.is_dir():
                # A root tree is reached through the holder's bind (it may sit in a folder
                # the unprivileged sandbox uid cannot enter); host folders directly.
                src = stage / "root" / name if self.rootfs is not None else path
                args += ["--ro-bind", str(src), f"/{name}"]
        if self.rootfs is None:
            for name in HOST_ETC:
                args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
            for path in sorted(Path("/etc").glob("python3*")):
                args += ["--ro-bind-try", str(path), str(path)]
        args += ["--ro-bind", str(stage / "passwd"), "/etc/passwd"]
        args += ["--ro-bind", str(stage / "group"), "/etc/group"]
        for path in self.ro_paths:
            args += ["--ro-bind-try", path, path]
        return args

    def _bwrap_argv(self, job: SandboxJob, stage: Path) -> list[str]:
        argv = []
        if self.as_root:
            argv += [
                "setpriv",
                f"--reuid={UNPRIVILEGED_UID}",
                f"--regid={UNPRIVILEGED_UID}",
                "--clear-groups",
                "--",
            ]
        argv += [
            "bwrap",
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "sandbox",
        ]
        argv += self._system_binds(stage)
        argv += [
            "--ro-bind",
            str(stage / "submission"),
            SUBMISSION_DIR,
            "--bind",
            str(stage / "output"),
            OUTPUT_DIR,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(job.tmp_max_bytes),
            "--tmpfs",
            "/tmp",
        ]
        if job.gpus:
            for dev in sorted(Path("/dev").glob("nvidia*")):
                argv += ["--dev-bind", str(dev), str(dev)]
        argv += ["--remount-ro", "/", "--chdir", SUBMISSION_DIR, "--clearenv"]
        for key, value in job.environment().items():
            argv += ["--setenv", key, value]
        limits = [
            f"--nproc={job.pids}",
            f"--fsize={max(job.output_max_bytes, job.tmp_max_bytes)}",
            "--core=0",
        ]
        if not job.gpus:
            limits.append(f"--as={job.memory_bytes}")
        # Inside, with the limits set: say "started" on fd 3 (a stage file the holder opened;
        # bwrap failing to set up never gets here), close it, and become the command.
        argv += ["--", "prlimit", *limits, "--", "/bin/sh", "-c", STARTER, job.command]
        return argv

    def _launcher(self) -> list[str]:
        argv = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        if self.as_root:
            return argv + ["unshare", "--mount", "--propagation", "private", "--"]
        return argv + [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
        ]

    # ------------------------------------------------------------------ one run

    def run(self, job: SandboxJob, source_dir: Path, output_dir: Path) -> BackendResult:
        stage = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        try:
            return self._run_staged(job, source_dir, output_dir, stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _prepare_stage(self, stage: Path) -> None:
        stage.chmod(0o711)  # the unprivileged sandbox uid may pass through, not list
        for name in ("output", "submission", "root"):
            (stage / name).mkdir(mode=0o755)
        passwd, group = _passwd()
        (stage / "passwd").write_text(passwd)
        (stage / "group").write_text(group)
        for name in ("passwd", "group"):
            (stage / name).chmod(0o644)

    def _run_staged(
        self, job: SandboxJob, source_dir: Path, output_dir: Path, stage: Path
    ) -> BackendResult:
        self._prepare_stage(stage)
        tar_r, tar_w = os.pipe()
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "S": str(stage),
            "SRC": str(source_dir),
            "ROOTFS": str(self.rootfs or ""),
            "OUT_SIZE": str(job.output_max_bytes),
            "OUT_INODES": str(job.output_max_files + 2),
        }
        argv = self._launcher() + ["sh", "-c", HOLDER, "holder"] + self._bwrap_argv(job, stage)
        log = LogCapture(job.log_max_bytes)
        collected: list[Collected] = []
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=tar_w,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(tar_r)
            raise SandboxError(f"bwrap sandbox could not start: {exc}") from None
        finally:
            os.close(tar_w)
        start = time.monotonic()
        reader = threading.Thread(
            target=log.drain, args=(iter(lambda: proc.stdout.read1(65536), b""),), daemon=True
        )
        reader.start()

        def extract() -> None:
            with os.fdopen(tar_r, "rb") as stream:
                collected.append(
                    extract_output(stream, output_dir, job.output_max_files, job.output_max_bytes)
                )

        extractor = threading.Thread(target=extract, daemon=True)
        extractor.start()

        timed_out, delay = False, 0.02
        exit_file = stage / "exit_code"
        while not exit_file.exists() and proc.poll() is None:
            if time.monotonic() - start >= job.timeout_s:
                timed_out = self._kill_sandbox(proc, stage, exit_file)
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        seconds = time.monotonic() - start

        notes: list[str] = []
        try:
            proc.wait(HOLDER_GRACE_S)
        except subprocess.TimeoutExpired:
            notes.append("the holder did not finish copying the output; killed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(10)
        extractor.join(10)
        proc.stdout.close()

        holder_log = _read(stage / "holder.log")
        started = _read(stage / "started") == "started"
        if proc.returncode in (90, 91, 92) or not (started or timed_out):
            raise SandboxError(
                f"bwrap sandbox failed to set up (holder exit {proc.returncode}): "
                f"{holder_log.strip() or log.text().strip()[-500:]}"
            )
        if holder_log.strip():
            notes.append(holder_log.strip()[-2000:])
        exit_code = _int(_read(exit_file))
        # bwrap reports a signal death of the sampler as 128+N, like a shell.
        memory = (
            not timed_out
            and exit_code not in (0, None)
            and bool(_MEMORY_PATTERNS.search(log.text()))
        )
        return BackendResult(
            backend=self.name,
            exit_code=exit_code,
            timed_out=timed_out,
            seconds=seconds,
            log=log,
            collected=collected[0] if collected else Collected(error="no output stream"),
            memory_exhausted=memory,
            output_usage=OutputUsage.parse(_read(stage / "statfs")),
            notes=notes,
        )

    def _kill_sandbox(self, proc: subprocess.Popen, stage: Path, exit_file: Path) -> bool:
        """Kill bwrap (its --die-with-parent init, and with it the pid namespace, follows).
        Returns False when the sampler finished first."""
        pid = _int(_read(stage / "sandbox.pid"))
        if pid is None:  # not even started: stop the whole holder
            os.killpg(proc.pid, signal.SIGKILL)
            return True
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return not exit_file.exists()
        try:
            if exit_file.exists():
                return False
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            return True
        except OSError:
            return not exit_file.exists()
        finally:
            os.close(pidfd)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


@functools.lru_cache(maxsize=8)
def _probe(rootfs: Path | None, ro_paths: tuple[str, ...], as_root: bool) -> str | None:
    """Run `true` in a real sandbox once per process: user namespaces may be disabled."""
    job = SandboxJob(
        command="true",
        image="",
        gpus=0,
        timeout_s=30,
        memory_bytes=1024**3,
        cpus=1,
        pids=16,
        output_max_bytes=1024**2,
        output_max_files=16,
        tmp_max_bytes=1024**2,
        log_max_bytes=4096,
    )
    backend = BwrapBackend(rootfs=rootfs, ro_paths=list(ro_paths))
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        src, out = Path(tmp, "src"), Path(tmp, "out")
        src.mkdir()
        src.chmod(0o755)
        Path(tmp).chmod(0o755)
        try:
            result = backend.run(job, src, out)
        except SandboxError as exc:
            return f"a test sandbox failed: {exc}"
    if result.exit_code != 0:
        return (
            f"a test sandbox running `true` exited {result.exit_code}: {result.log.text()[-300:]}"
        )
    return None
