"""`grader run --executor slurm` against a real one-node Slurm (.ci/slurm-setup.sh): real sbatch
job arrays, real sacct, real scancel and time limits, the real CLI in real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cli
import kept
import pytest
import yaml

from grader.examples import CLASS

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / ".ci" / "slurm-setup.sh"
IMAGES = 16  # per student; the Inception forward pass is ~6 images/s on a CPU
STUDENTS = sorted(s.student_id for s in CLASS)


def _cluster_answers(env: dict) -> bool:
    try:
        for cmd in (["scontrol", "ping"], ["sacct", "-n", "-X", "-S", "now-1minutes"]):
            res = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=30, check=False
            )
            if res.returncode != 0 or "DOWN" in res.stdout:
                return False
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True


@pytest.fixture(scope="module")
def slurm_conf() -> str:
    """SLURM_CONF of a running cluster: the one in the environment, else one started here."""
    if os.environ.get("SLURM_CONF") and _cluster_answers(dict(os.environ)):
        return os.environ["SLURM_CONF"]
    if os.geteuid() != 0:
        pytest.skip("no Slurm cluster answers, and starting one (.ci/slurm-setup.sh) needs root")
    folder = os.environ.get("GRADER_SLURM_DIR", "/tmp/grader-slurm")
    try:
        res = subprocess.run(
            ["bash", str(SETUP), folder], capture_output=True, text=True, timeout=180, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the Slurm daemons could not start: {exc}")
    if res.returncode != 0:
        pytest.skip(f"the Slurm daemons could not start: {res.stderr.strip()[-600:]}")
    return res.stdout.strip().splitlines()[-1].partition("=")[2]



@pytest.fixture(scope="module")
def env(inception_weights, slurm_conf):
    """The CLI's environment; features are kept across test runs (the tests that need a cold
    cache give their own)."""
    return {
        **os.environ,
        "GRADER_CACHE_DIR": str(kept.features()),
        "GRADER_INCEPTION_WEIGHTS": str(inception_weights),
        "NO_COLOR": "1",
        "SLURM_CONF": slurm_conf,
    }


@pytest.fixture(scope="module")
def klass(tmp_path_factory, mnist_dir, env):
    """The example class (real MNIST digits), its rubric with bands for small-N FIDs, and
    reference statistics of 100 MNIST-train digits."""
    root = tmp_path_factory.mktemp("class")
    grader(
        "example",
        "class",
        root,
        "--images",
        IMAGES,
        "--mnist",
        mnist_dir,
        "--rubric",
        ROOT / "rubrics" / "hw3.yaml",
        env=env,
    )
    rubric = yaml.safe_load((root / "rubric.yaml").read_text())
    rubric["scoring"]["bands"][0]["points"] = [[100, 100], [500, 0]]
    (root / "rubric.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False))
    grader("stats", mnist_dir, "--limit", 100, "-o", root / "mnist.npz", env=env)
    return root


def run_args(klass, out, *extra):
    return [
        "run",
        klass / "submissions",
        "--rubric",
        klass / "rubric.yaml",
        "--times",
        klass / "times.csv",
        "--out",
        out,
        "-q",
        *extra,
    ]


def grader(*args, env, check=(0, 3), **kw):
    """The CLI in a child process; a run that grades ends 0, or 3 when a grade is incomplete."""
    return cli.grader(*args, env=env, check=check, **kw)


def csv_of(out, env) -> str:
    return grader("export", out, "--format", "csv", env=env).stdout


def gradings(out: Path) -> list[str]:
    try:
        with sqlite3.connect(out / "grader.db", timeout=5) as con:
            return [r[0] for r in con.execute("SELECT student_id FROM gradings")]
    except sqlite3.Error:
        return []


def tasks(out: Path) -> dict:
    try:
        return json.loads((out / "slurm" / "tasks.json").read_text())["tasks"]
    except (OSError, ValueError):
        return {}


@pytest.fixture(scope="module")
def local(klass, env, tmp_path_factory):
    """The class graded by the local executor (two threads); its CSV is the reference."""
    out = tmp_path_factory.mktemp("local")
    grader(*run_args(klass, out, "-j", 2), env=env)
    return csv_of(out, env)


def test_slurm_equals_local_byte_for_byte(klass, env, local, tmp_path):
    # A cold feature cache: every task loads InceptionV3 and writes features, two at a time,
    # into one shared cache folder.
    cold = {**env, "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "slurm"
    res = grader(*run_args(klass, out, "--executor", "slurm", "--time", 10), env=cold)
    assert "slurm: submitted 8 task(s)" in res.stdout
    assert csv_of(out, env) == local
    assert sorted(gradings(out)) == STUDENTS
    record = tasks(out)
    assert sorted(record) == STUDENTS and {t["status"] for t in record.values()} == {"done"}
    assert len({t["job_id"].split("_")[0] for t in record.values()}) == 1  # one array
    assert list((tmp_path / "cache" / "features").rglob("*.npz"))

    again = grader(*run_args(klass, out, "--executor", "slurm"), env=env)
    assert "8 unchanged" in again.stdout and "slurm: submitted" not in again.stdout


def _cancel_one_running(out: Path, proc: subprocess.Popen, env) -> tuple[str, str]:
    """scancel a task in the first second of its run; returns (student id, job id).

    A task that has run a while may already have written its result and be exiting: cancelling
    it then is no cancellation of its grading (the run rightly counts it as graded). Python and
    torch alone take longer than a second to start, so a task at 0:00 of elapsed time has not
    graded anyone yet."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        by_job = {t["job_id"]: sid for sid, t in tasks(out).items() if t["status"] == "queued"}
        if by_job:
            running = subprocess.run(
                ["squeue", "-h", "-t", "R", "-o", "%i %M"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
            just_started = [job for job, _, used in (line.partition(" ") for line in running) if used == "0:00"]
            hit = next((j for j in just_started if j in by_job), None)
            if hit:
                subprocess.run(["scancel", hit], env=env, check=True)
                return by_job[hit], hit
        time.sleep(0.05)
    raise AssertionError("no task was seen in the first second of its run")


def test_scancel_mid_run_is_retried(klass, env, local, tmp_path):
    out = tmp_path / "retried"
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", *map(str, run_args(klass, out, "--executor", "slurm"))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sid, job_id = _cancel_one_running(out, proc, env)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 3), stdout + stderr
    assert (
        f"{sid}: task {job_id} ended CANCELLED" in stdout
        and "resubmitting (attempt 2 of 2)" in stdout
    )
    entry = tasks(out)[sid]
    assert entry["status"] == "done" and entry["attempt"] == 2 and entry["job_id"] != job_id
    assert entry["history"][0]["job_id"] == job_id and entry["history"][0]["state"] == "CANCELLED"
    assert csv_of(out, env) == local  # the other students unaffected, the retried one graded
    assert sorted(gradings(out)) == STUDENTS  # the cancelled attempt stored nothing


def test_scancel_without_retries_is_the_students_finding_then_a_rerun_grades_only_it(
    klass, env, local, tmp_path
):
    out = tmp_path / "failed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader",
            *map(str, run_args(klass, out, "--executor", "slurm", "--retries", 0)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sid, job_id = _cancel_one_running(out, proc, env)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr  # a student's grading did not complete
    rows = {line.split(",")[0]: line for line in csv_of(out, env).splitlines()}
    expected = {line.split(",")[0]: line for line in local.splitlines()}
    assert ",error," in rows[sid] and rows[sid] != expected[sid]
    assert {k: v for k, v in rows.items() if k != sid} == {
        k: v for k, v in expected.items() if k != sid
    }
    with sqlite3.connect(out / "grader.db") as con:
        record = json.loads(
            con.execute("SELECT record FROM results WHERE student_id = ?", (sid,)).fetchone()[0]
        )
    finding = next(f for f in record["findings"] if f["code"] == "executor.task_failed")
    assert "CANCELLED" in finding["message"] and job_id in finding["message"]
    assert sid not in gradings(out)  # a stopped task is not a grading

    rerun = grader(*run_args(klass, out, "--executor", "slurm"), env=env)
    assert "1 graded" in rerun.stdout and "7 unchanged" in rerun.stdout
    assert csv_of(out, env) == local
    assert sorted(gradings(out)) == STUDENTS


# SIGINT back to its default in the child, as in a terminal, then the CLI. A test run started in
# the background of a shell (`pytest &`, nohup) passes SIGINT on ignored, and Python keeps an
# ignored SIGINT ignored: the submitter would grade everyone and exit 0.
CTRL_C_REACHES_IT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'grader', *sys.argv[1:]])"
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_submitter_reattaches_and_grades_nobody_twice(klass, env, local, tmp_path, sig):
    out = tmp_path / "interrupted"
    args = run_args(klass, out, "--executor", "slurm", "--max-concurrent", 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_REACHES_IT, *map(str, args)],
        env={**env, "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints every thread's stack
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(gradings(out)) < 2:
        time.sleep(0.05)
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate(timeout=30)
        pytest.fail(f"still running 60 s after {sig.name}; where it was:\n{stderr[-8000:]}")
    assert proc.returncode not in (0, 3), "the run finished before it could be interrupted"
    if sig == signal.SIGINT:
        assert "run the same command again to re-attach" in stderr
    before = {sid: t["job_id"] for sid, t in tasks(out).items()}
    assert sorted(before) == STUDENTS and 2 <= len(gradings(out)) < len(STUDENTS)

    again = grader(*args, env=env)
    assert "re-attached to" in again.stdout and "slurm: submitted" not in again.stdout
    assert {sid: t["job_id"] for sid, t in tasks(out).items()} == before  # nothing resubmitted
    assert Counter(gradings(out)) == Counter(STUDENTS)  # everyone exactly once
    assert csv_of(out, env) == local


@pytest.mark.slow
def test_time_limit_is_reported_as_timeout(klass, env, mnist_dir, tmp_path):
    """A student whose FID takes minutes on a CPU, under a one-minute limit; a small one beside.
    A cold feature cache of its own: the slow student's features must be computed."""
    env = {**env, "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    subs = tmp_path / "submissions"
    grader(
        "example",
        "hw3",
        subs / "A0000001",
        "--student-id",
        "A0000001",
        "--images",
        IMAGES,
        "--mnist",
        mnist_dir,
        env=env,
    )
    grader(
        "example",
        "hw3",
        subs / "A0000099",
        "--student-id",
        "A0000099",
        "--images",
        900,
        "--mnist",
        mnist_dir,
        env=env,
    )
    out = tmp_path / "out"
    res = grader(
        "run",
        subs,
        "--rubric",
        klass / "rubric.yaml",
        "--out",
        out,
        "-q",
        "--executor",
        "slurm",
        "--time",
        1,
        env=env,
        check=None,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    with sqlite3.connect(out / "grader.db") as con:
        records = {
            r[0]: json.loads(r[1]) for r in con.execute("SELECT student_id, record FROM results")
        }
    slow = [f for f in records["A0000099"]["findings"] if f["code"] == "executor.timeout"]
    assert slow and "time limit of 1 min" in slow[0]["message"], records["A0000099"]["findings"]
    entry = tasks(out)["A0000099"]
    assert entry["status"] == "failed" and [h["state"] for h in entry["history"]] == [
        "TIMEOUT"
    ]  # not retried
    assert entry["job_id"] in slow[0]["message"]
    assert records["A0000001"]["grade"] is not None and records["A0000001"]["status"] != "error"
    assert gradings(out) == ["A0000001"]


def _gpus_on_cluster(env) -> int:
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%G"], env=env, capture_output=True, text=True, check=False
    ).stdout
    return max(
        (int(x.rsplit(":", 1)[1].split("(")[0]) for x in out.split() if x.startswith("gpu")),
        default=0,
    )


def test_gpu_tasks_get_distinct_gpus_and_overasking_is_refused(klass, env, tmp_path):
    gpus = _gpus_on_cluster(env)
    if gpus < 2:
        pytest.skip("the cluster declares fewer than 2 GPUs (GRADER_SLURM_GPUS=0)")
    out = tmp_path / "gpu"
    grader(
        *run_args(klass, out, "--no-metrics", "--executor", "slurm", "--gpus-per-task", 1), env=env
    )
    used = Counter(t["gpus"] for t in tasks(out).values())
    assert set(used) == {"0", "1"}, used  # Slurm's CUDA_VISIBLE_DEVICES, one GPU per task

    res = grader(
        *run_args(
            klass,
            tmp_path / "too-many",
            "--no-metrics",
            "--executor",
            "slurm",
            "--gpus-per-task",
            gpus + 1,
        ),
        env=env,
        check=None,
    )
    assert res.returncode == 2 and f"has {gpus} GPU(s)" in res.stderr, res.stderr
    assert not (tmp_path / "too-many" / "slurm").exists()


def test_refuses_without_accounting(klass, env, slurm_conf, tmp_path):
    conf = (
        Path(slurm_conf)
        .read_text()
        .replace("accounting_storage/slurmdbd", "accounting_storage/none")
    )
    (tmp_path / "slurm.conf").write_text(conf)
    (tmp_path / "gres.conf").write_text((Path(slurm_conf).parent / "gres.conf").read_text())
    res = grader(
        *run_args(klass, tmp_path / "out", "--no-metrics", "--executor", "slurm"),
        env={**env, "SLURM_CONF": str(tmp_path / "slurm.conf")},
        check=None,
    )
    assert res.returncode == 2 and "accounting" in res.stderr, res.stdout + res.stderr
