"""Grading as Slurm job arrays, through submitit.

One array task per student runs `task.run_task`; results come back as pickles in
OUT/slurm/jobs (a folder every node must see, like the venv). OUT/slurm/tasks.json records
which job grades which student under which grading key, so an interrupted `grader run`
re-attaches to its jobs instead of submitting them again. Job states come from `sacct`,
so Slurm accounting (slurmdbd) is required.

Arrays are submitted held and released once their ids are recorded: a submitting process
killed in between leaves only held jobs, which the next run cancels by name.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from grader import atomic
from grader.errors import GraderError
from grader.executors import Executor, GradeJob, failed_result
from grader.executors.settings import ExecutorSettings
from grader.executors.task import ContextSpec, TaskOutput, portable, run_task
from grader.results import StudentResult

STATE_FILE = "tasks.json"
# Terminal states that a resubmission cannot fix: the same limit would be hit again.
NOT_RETRIED = {"TIMEOUT", "OUT_OF_MEMORY", "DEADLINE"}
RUNNING = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "COMPLETING",
    "CONFIGURING",
    "RESIZING",
    "SUSPENDED",
    "PREEMPTED",
    "UNKNOWN",
    "READY",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
}
RESULT_GRACE_S = 15.0  # a COMPLETED task's result may reach a network file system late


def _slurm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def _sbatch_params(args: Sequence[str]) -> dict:
    """--qos=high --exclusive -> {"qos": "high", "exclusive": True} (submitit's form)."""
    out: dict = {}
    for arg in args:
        for word in shlex.split(arg):
            if not word.startswith("--"):
                raise GraderError(f"--sbatch-arg {word!r}: give long sbatch flags, e.g. --qos=high")
            key, sep, value = word[2:].partition("=")
            out[key] = value if sep else True
    return out


def _gpus_in(gres: str) -> int:
    """Largest GPU count in an sinfo %G field like 'gpu:a100:4(S:0-1),gpu:2' or '(null)'."""
    counts = [int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres)]
    return max(counts, default=0)


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(self, settings: ExecutorSettings):
        self.settings = settings
        self.events: list[str] = []
        self._progress = False

    # ---------------------------------------------------------------- refusals

    def check(self, ctx) -> None:
        s = self.settings
        if shutil.which("sbatch") is None:
            raise GraderError(
                "--executor slurm: sbatch is not on PATH (run on a Slurm login node, "
                "or grade here with --executor local)"
            )
        probe = _slurm("sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID")
        if probe.returncode != 0 or "disabled" in probe.stderr.lower():
            raise GraderError(
                "--executor slurm: Slurm accounting does not answer (sacct: "
                f"{(probe.stderr or probe.stdout).strip()[:300] or 'exit ' + str(probe.returncode)}). Task states "
                "come from sacct; without slurmdbd a stopped task would be waited on forever."
            )
        info = _slurm("sinfo", "-h", "-o", "%P|%G")
        if info.returncode != 0:
            raise GraderError(f"--executor slurm: sinfo failed: {info.stderr.strip()[:300]}")
        partitions: dict[str, int] = {}
        for line in info.stdout.splitlines():
            name, _, gres = line.partition("|")
            name = name.rstrip("*")
            partitions[name] = max(partitions.get(name, 0), _gpus_in(gres))
        if s.partition and s.partition not in partitions:
            raise GraderError(
                f"--partition {s.partition}: no such partition (there are: "
                f"{', '.join(sorted(partitions)) or 'none'})"
            )
        if s.gpus_per_task:
            where = [s.partition] if s.partition else list(partitions)
            most = max((partitions[p] for p in where), default=0)
            if s.gpus_per_task > most:
                raise GraderError(
                    f"--gpus-per-task {s.gpus_per_task}: the largest node in "
                    f"{'partition ' + s.partition if s.partition else 'this cluster'} has "
                    f"{most} GPU(s)"
                )
        _sbatch_params(s.sbatch_args)  # refuses malformed flags before anything is submitted

    # ---------------------------------------------------------------- state

    def _load(self, folder: Path) -> dict:
        path = folder / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return {"version": 1, "pending": [], "tasks": {}}
        except (OSError, ValueError) as exc:
            raise GraderError(
                f"{path}: unreadable ({exc}); delete it to submit everything again"
            ) from None
        state.setdefault("pending", [])
        state.setdefault("tasks", {})
        return state

    def _save(self, folder: Path, state: dict) -> None:
        data = json.dumps(state, indent=1, sort_keys=True).encode()
        atomic.write_bytes(folder / STATE_FILE, data)

    def _say(self, text: str) -> None:
        self.events.append(text)
        if self._progress:
            tqdm.write(text, file=sys.stderr)

    def report(self) -> list[str]:
        return list(self.events)

    # ---------------------------------------------------------------- submission

    def _executor(self, jobs_dir: Path, name: str, ctx, count: int):
        import submitit

        s = self.settings
        extra = _sbatch_params(s.sbatch_args)
        extra["hold"] = True
        if s.mem:
            extra["mem"] = s.mem
        srun_args = []
        python = s.python
        if s.container_image:
            mounts = sorted({str(p) for p in self._mounts(ctx, jobs_dir)})
            srun_args = [
                f"--container-image={s.container_image}",
                f"--container-mounts={','.join(mounts)}",
                f"--container-workdir={Path.cwd()}",
            ]
            python = python or "python3"
        ex = submitit.SlurmExecutor(folder=jobs_dir, python=python)
        params = {
            "job_name": name,
            "time": s.time_minutes,
            "cpus_per_task": s.cpus_per_task,
            "array_parallelism": s.max_concurrent or count,
            "additional_parameters": extra,
            "srun_args": srun_args or None,
        }
        if s.partition:
            params["partition"] = s.partition
        if s.gpus_per_task:
            params["gres"] = f"gpu:{s.gpus_per_task}"
        ex.update_parameters(**params)
        return ex

    def _mounts(self, ctx, jobs_dir: Path) -> list[Path]:
        spec = self._spec
        paths = [jobs_dir.parent.parent, Path(spec.rubric_path).parent, *self._sub_roots]
        paths += [Path(p).parent for p in (spec.weights, *spec.stats_overrides.values()) if p]
        if spec.cache_dir:
            paths.append(Path(spec.cache_dir))
        return [p.absolute() for p in paths]

    def _max_array(self) -> int:
        config = _slurm("scontrol", "show", "config")
        m = re.search(r"^MaxArraySize\s*=\s*(\d+)", config.stdout, re.MULTILINE)
        return int(m.group(1)) if m else 1001

    @contextmanager
    def _no_interrupt(self):
        """Ctrl-C waits until a submission is recorded (SIGKILL is covered by --hold)."""
        main = threading.current_thread() is threading.main_thread()
        if main:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            if main:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def _submit(
        self, batch: list[GradeJob], attempts: dict[str, int], state: dict, folder: Path, ctx
    ) -> dict:
        """Submit held arrays, record them, release them; returns student id -> submitit job."""
        jobs_dir = folder / "jobs"
        out = {}
        size = self._max_array()
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            name = f"grader-{uuid.uuid4().hex[:12]}"
            with self._no_interrupt():
                state["pending"].append(name)
                self._save(folder, state)
                ex = self._executor(jobs_dir, name, ctx, len(chunk))
                try:
                    submitted = ex.map_array(
                        run_task, [self._spec] * len(chunk), [portable(j.submission) for j in chunk]
                    )
                except Exception as exc:  # noqa: BLE001 -- sbatch's refusal is the TA's to read
                    state["pending"].remove(name)
                    self._save(folder, state)
                    raise GraderError(
                        f"sbatch refused the tasks: {str(exc).strip()[-600:]}"
                    ) from None
                for job, sj in zip(chunk, submitted):
                    entry = state["tasks"].get(job.student_id, {})
                    state["tasks"][job.student_id] = {
                        "key": job.key,
                        "job_id": sj.job_id,
                        "attempt": attempts[job.student_id],
                        "status": "queued",
                        "history": entry.get("history", []) if entry.get("key") == job.key else [],
                    }
                    out[job.student_id] = sj
                state["pending"].remove(name)
                self._save(folder, state)
                _slurm("scontrol", "release", submitted[0].job_id.split("_")[0])
        return out

    # ---------------------------------------------------------------- the loop

    def grade(
        self, jobs: Sequence[GradeJob], ctx, out_dir: Path
    ) -> Iterator[tuple[GradeJob, StudentResult]]:
        from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

        class Job(SlurmJob):  # its own watcher: sacct at most every 30 s once things settle
            watcher = SlurmInfoWatcher(delay_s=30)

        if not jobs:
            return
        self._progress = ctx.progress
        self._spec = ContextSpec.from_context(ctx)
        self._sub_roots = sorted(
            {
                Path(
                    os.path.commonpath(
                        [p.absolute().parent for j in jobs for p in j.submission.items]
                    )
                )
            }
        )
        folder = Path(out_dir) / "slurm"
        folder.mkdir(parents=True, exist_ok=True)
        state = self._load(folder)
        for name in state["pending"]:  # held arrays whose ids were never recorded
            _slurm("scancel", f"--name={name}", "--state=PENDING")
        state["pending"] = []

        by_id = {j.student_id: j for j in jobs}
        attempts: dict[str, int] = {}
        active: dict[str, SlurmJob] = {}
        fresh: list[GradeJob] = []
        for job in jobs:
            entry = state["tasks"].get(job.student_id)
            # queued: still running or finished since; done: its result may not be stored yet
            if entry and entry["key"] == job.key and entry["status"] in ("queued", "done"):
                active[job.student_id] = Job(folder=folder / "jobs", job_id=entry["job_id"])
                attempts[job.student_id] = entry.get("attempt", 1)
            else:
                if (
                    entry and entry["status"] == "queued"
                ):  # submission changed since: stop the old task
                    _slurm("scancel", entry["job_id"])
                attempts[job.student_id] = 1
                fresh.append(job)
        if active:
            arrays = sorted({j.job_id.split("_")[0] for j in active.values()})
            _slurm(
                "scontrol", "release", ",".join(arrays)
            )  # in case a kill came before the release
            self._say(
                f"slurm: re-attached to {len(active)} task(s) already submitted "
                f"(job{'s' if len(arrays) > 1 else ''} {', '.join(arrays)})"
            )
        try:
            if fresh:
                active.update(self._submit(fresh, attempts, state, folder, ctx))
                arrays = sorted({active[j.student_id].job_id.split("_")[0] for j in fresh})
                self._say(
                    f"slurm: submitted {len(fresh)} task(s) as job{'s' if len(arrays) > 1 else ''} "
                    f"{', '.join(arrays)}; results in {folder / 'jobs'}"
                )
            yield from self._wait(active, by_id, attempts, state, folder, ctx)
        # Ctrl-C here, or while the caller stores a result (the caller then closes us).
        except (KeyboardInterrupt, GeneratorExit):
            self._save(folder, state)
            still = [e["job_id"] for e in state["tasks"].values() if e["status"] == "queued"]
            if still:
                print(
                    f"interrupted: {len(still)} task(s) keep running on Slurm; run the same command "
                    f"again to re-attach (or scancel {' '.join(sorted({j.split('_')[0] for j in still}))})",
                    file=sys.stderr,
                )
            raise

    def _wait(self, active, by_id, attempts, state, folder, ctx):
        from submitit.core import utils

        completed_since: dict[str, float] = {}
        while active:
            retry: list[GradeJob] = []
            for sid, sj in list(active.items()):
                job, entry = by_id[sid], state["tasks"][sid]
                if sj.paths.result_pickle.exists():
                    outcome, value = utils.pickle_load(sj.paths.result_pickle)
                    del active[sid]
                    if outcome == "success" and isinstance(value, TaskOutput):
                        entry.update(
                            status="done",
                            host=value.host,
                            gpus=value.gpus,
                            seconds=round(value.seconds, 3),
                        )
                        self._save(folder, state)
                        yield job, value.result
                        continue
                    last = str(value).strip().splitlines()[-1:] or ["no traceback"]
                    entry["history"].append(
                        {"job_id": sj.job_id, "state": "FAILED", "reason": last[0]}
                    )
                    entry["status"] = "failed"
                    self._save(folder, state)
                    self._say(f"slurm: {sid}: task {sj.job_id} crashed: {last[0]}")
                    yield (
                        job,
                        failed_result(
                            job,
                            "executor.task_failed",
                            f"the grading task crashed on the cluster (job {sj.job_id}): {last[0]}",
                            ctx.rubric.content_hash,
                            detail=str(value),
                        ),
                    )
                    continue
                raw = sj.watcher.get_state(sj.job_id)
                slurm_state = raw.split()[0].upper() if raw else "UNKNOWN"
                if slurm_state in RUNNING:
                    continue
                if slurm_state == "COMPLETED":
                    first = completed_since.setdefault(sid, time.monotonic())
                    if time.monotonic() - first < RESULT_GRACE_S:
                        continue
                del active[sid]
                detail = self._describe(sj.job_id) or {"State": raw}
                reason = detail.get("State", raw)
                where = f"job {sj.job_id}" + (
                    f" on {detail['NodeList']}" if detail.get("NodeList") else ""
                )
                entry["history"].append(
                    {
                        "job_id": sj.job_id,
                        "state": slurm_state,
                        "reason": reason,
                        "exit_code": detail.get("ExitCode", ""),
                        "node": detail.get("NodeList", ""),
                    }
                )
                if slurm_state not in NOT_RETRIED and attempts[sid] <= self.settings.retries:
                    attempts[sid] += 1
                    self._say(
                        f"slurm: {sid}: task {sj.job_id} ended {reason} ({where}); "
                        f"resubmitting (attempt {attempts[sid]} of {self.settings.retries + 1})"
                    )
                    retry.append(job)
                    continue
                entry["status"] = "failed"
                self._save(folder, state)
                tried = ", ".join(h["job_id"] for h in entry["history"][-attempts[sid] :])
                if slurm_state == "TIMEOUT":
                    code = "executor.timeout"
                    message = (
                        f"grading stopped at the Slurm time limit of {self.settings.time_minutes} min "
                        f"({where}); the TA can raise --time and run again"
                    )
                else:
                    code = "executor.task_failed"
                    message = f"the grading task was stopped by Slurm: {reason} ({where}; tried as {tried})"
                self._say(f"slurm: {sid}: {message}")
                # No traceback: nothing crashed; the attempts are in tasks.json.
                yield job, failed_result(job, code, message, ctx.rubric.content_hash)
            if retry:
                active.update(self._submit(retry, attempts, state, folder, ctx))
            if active:
                time.sleep(self.settings.poll_seconds)

    @staticmethod
    def _describe(job_id: str) -> dict[str, str]:
        """sacct's account of one finished task: State (with 'by UID'), ExitCode, NodeList."""
        fields = ["State", "ExitCode", "NodeList", "Elapsed", "Timelimit"]
        res = _slurm("sacct", "-j", job_id, "-X", "-n", "-P", "-o", ",".join(fields))
        line = next((ln for ln in res.stdout.splitlines() if ln.strip()), "")
        return dict(zip(fields, line.split("|"))) if line else {}
