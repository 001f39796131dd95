"""Shared fixtures: the read-only data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
INCEPTION_WEIGHTS = SHARED_DATA / "inception" / "fid_inception_v3.pth"
MNIST_DIR = SHARED_DATA / "mnist"
FACES_ZIP = SHARED_DATA / "faces" / "celeba_first10k_89x109.zip"


def _share_the_cores() -> None:
    """Under pytest-xdist, each worker (and every process it starts) uses its share of the cores.

    Two workers whose torch each runs one OpenMP thread per core make those threads spin against
    one another: tiny networks ran many times slower than the work alone. A value the caller set
    is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    from grader.metrics.fid import THREADS_ENV

    share = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", THREADS_ENV):
        os.environ.setdefault(name, share)
    if "torch" in sys.modules:  # already imported: it read OMP_NUM_THREADS before this ran
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores()


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is absent (a clone without ../shared/data)")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _require(MNIST_DIR)


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    return _require(INCEPTION_WEIGHTS)


@pytest.fixture(scope="session")
def faces_zip() -> Path:
    return _require(FACES_ZIP)


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """(images [10000,28,28] uint8, labels) of real MNIST test digits."""
    from grader.datasets import load_mnist

    return load_mnist(mnist_dir, "test")


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from grader.datasets import load_mnist

    return load_mnist(mnist_dir, "train")


# ---------------------------------------------------------------- sandbox

SETUP = ROOT / ".ci" / "sandbox-setup.sh"
TEST_IMAGE = "grader-sampler:test"
BASE_IMAGE = os.environ.get("GRADER_BASE_IMAGE", "grader-base:bookworm")
# The tests never change the machine on their own: the set-up (apt installs, a debootstrapped
# root tree, a dockerd) is CI's explicit step (.ci/run), or asked for with this variable.
SETUP_OPT_IN = "GRADER_TEST_SETUP_SANDBOX"
HOW_TO_SET_UP = f"set it up with `sudo bash .ci/sandbox-setup.sh` or run the tests as root with {SETUP_OPT_IN}=1"


def _cache_dir() -> Path:
    if os.environ.get("GRADER_SANDBOX_CACHE"):
        return Path(os.environ["GRADER_SANDBOX_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "grader" / "sandbox"


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def set_up_sandbox_host() -> tuple[str | None, int | None]:
    """Run .ci/sandbox-setup.sh when asked to (GRADER_TEST_SETUP_SANDBOX=1, as root); otherwise nothing.
    Returns (why the set-up failed or was not run, the pid of a dockerd it started)."""
    if os.environ.get(SETUP_OPT_IN) != "1":
        return None, None
    if os.geteuid() != 0 or not shutil.which("bash"):
        return f"{SETUP_OPT_IN}=1 needs root and bash (the set-up installs packages)", None
    pidfile = _cache_dir() / "dockerd.pid"
    before = _read_pid(pidfile)
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=1800, check=False)
    after = _read_pid(pidfile)
    started = after if after is not None and after != before else None
    if proc.returncode != 0:
        return f".ci/sandbox-setup.sh failed: {proc.stderr.strip()[-400:]}", started
    return None, started


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has stopped; only its parent can reap it


def stop_started_daemon(pid: int | None, timeout_s: float = 30) -> None:
    """Stop the dockerd this test session started (TERM, then KILL), nothing else."""
    if pid is None or not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    (_cache_dir() / "dockerd.pid").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def sandbox_host() -> Iterator[dict[str, str | None]]:
    """What the host offers the sandbox tests; yields a skip reason per backend (None: usable).
    Sets nothing up unless GRADER_TEST_SETUP_SANDBOX=1; a daemon the set-up started is stopped at the end."""
    setup_error, started = set_up_sandbox_host()
    advice = setup_error or HOW_TO_SET_UP
    saved = os.environ.get("GRADER_SANDBOX_ROOTFS")
    try:
        yield _sandbox_reasons(advice)
    finally:
        if saved is None:
            os.environ.pop("GRADER_SANDBOX_ROOTFS", None)
        else:
            os.environ["GRADER_SANDBOX_ROOTFS"] = saved
        stop_started_daemon(started)


def _sandbox_reasons(advice: str) -> dict[str, str | None]:
    reasons: dict[str, str | None] = {}

    # Skipped only when no engine answers or no base image is there; a Dockerfile that does
    # not build is an error of the tests.
    import docker

    client = None
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(BASE_IMAGE)
        reasons["docker"] = None
    except docker.errors.DockerException as exc:
        reasons["docker"] = f"no Docker engine or no {BASE_IMAGE} image ({exc}); {advice}"
    if reasons["docker"] is None:
        with open(ROOT / "Dockerfile", "rb") as dockerfile:
            client.images.build(
                fileobj=dockerfile, tag=TEST_IMAGE, buildargs={"BASE_IMAGE": BASE_IMAGE}, rm=True
            )
    if client is not None:
        client.close()

    # bwrap is skipped only when absent (or no root tree is there); a sandbox that fails to
    # start where bwrap exists is a failure of the tests, not a skip.
    rootfs = Path(os.environ.get("GRADER_SANDBOX_ROOTFS") or _cache_dir() / "rootfs-bookworm")
    if shutil.which("bwrap") is None:
        reasons["bwrap"] = f"bubblewrap (bwrap) is not installed; {advice}"
    elif not (rootfs / "usr" / "bin" / "python3").exists():
        reasons["bwrap"] = f"no root tree with python3 + Pillow at {rootfs}; {advice}"
    else:
        os.environ["GRADER_SANDBOX_ROOTFS"] = str(rootfs)
        reasons["bwrap"] = None
    return reasons


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), pytest.param("bwrap")])
def backend(request, sandbox_host) -> str:
    reason = sandbox_host[request.param]
    if reason is not None:
        pytest.skip(f"{request.param} sandbox unavailable: {reason}")
    return request.param




# ---------------------------------------------------------------- browser

# Headless on a closed network: without the background-networking flags Chromium waits on
# services it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    if os.environ.get("GRADER_CHROMIUM"):
        return os.environ["GRADER_CHROMIUM"]
    return next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Chromium cannot be driven: the playwright package is not installed")
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium cannot be started: no chromium executable on PATH "
                    "(apt-get install chromium, or set GRADER_CHROMIUM)")
    playwright = sync_playwright().start()
    try:
        # Playwright gives every launch a fresh temporary --user-data-dir.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as exc:  # noqa: BLE001 - any launch failure means: no browser here
        playwright.stop()
        pytest.skip(f"Chromium cannot be started ({executable}): {exc}")
    yield browser
    browser.close()
    playwright.stop()


# ---------------------------------------------------------------- the i-CLEVR evaluator

EVALUATOR_CACHE = "iclevr-evaluator"  # under pytest's cache folder, kept across runs


def _evaluator_cache(config) -> Path:
    return config.cache.mkdir(EVALUATOR_CACHE)


@pytest.fixture(scope="session")
def evaluator_checkpoint(request) -> Path:
    """The course's resnet18 evaluator trained on rendered scenes (tests/iclevr.py), once per
    content of the code it depends on. Training (minutes) starts in the background as soon as
    the tests are collected, so it overlaps the tests that run before the first one needs it."""
    import iclevr

    return iclevr.cached_evaluator(_evaluator_cache(request.config))


def _xdist_worker(config) -> str | None:
    return getattr(config, "workerinput", {}).get("workerid")


def _start_evaluator_training(session) -> None:
    if _xdist_worker(session.config) not in (None, "gw0"):  # one starter per run
        return
    if not any("evaluator_checkpoint" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    import iclevr

    cache = _evaluator_cache(session.config)
    if iclevr.cached_path(cache).is_file():
        return
    # One thread: it shares the CPU with the tests. A test that needs it first waits on the
    # trainer's file lock, then loads the file.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import iclevr; "
            f"iclevr.cached_evaluator({str(cache)!r})")
    with open(cache / "trainer.log", "ab") as log:  # why a training stopped, if it does
        session.config._evaluator_trainer = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)


# ---------------------------------------------------------------- order

# Test files whose fixtures take minutes, longest first (`--durations=0` on a fresh clone). Under
# pytest-xdist (`--dist loadfile`, this order kept) each worker takes the next file: the long ones
# start first and the short ones fill in the ends. Serially the order changes nothing.
LONG_FIRST = [  # seconds under `-n 2` on 2 cores: fresh clone / rerun with the kept caches (kept.py)
    "test_fid_parity.py",  # 1986 / 76: the course tools themselves; 2049 images through `grader stats`
    "test_executor_slurm.py",  # 1072 / 615: real job arrays (its own caches: none kept)
    "test_autograder_gradescope.py",  # 898 / 323: a clean venv by pip, 8 uploads graded under limits
    "test_hw9_class.py",  # 503 / 73
    "test_run.py",  # 422 / 59
    "test_reference.py",  # 242 / 127: 1,000-step process grids of tiny DDPMs
    "test_autograder_prairielearn.py",  # 203 / 53; it and the lab6 files wait for the evaluator
    "test_fid_frechet.py",  # 187 / 114
    "test_fid_engine.py",  # 186 / 90
    "test_kid.py",  # 119 / 29
    "test_hw3_integrity.py",  # 95 / 108
    "test_grades_safety.py",  # 83 / 91
    "test_lab6_class.py",  # 79 / 85
    "test_check_cli.py",  # 76 / 88
    "test_example_reference.py",  # 56 / 90
    "test_sandbox_hostile.py",  # 42 / 44
    "test_precision_recall.py",  # 41 / 0
    "test_integrity.py",  # 38 / 36
    "test_report_browser.py",  # 31 / 30
]


def pytest_configure(config) -> None:
    import kept

    kept.configure(config)


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as collected


def pytest_collection_finish(session) -> None:
    _start_evaluator_training(session)


def pytest_sessionfinish(session) -> None:
    trainer = getattr(session.config, "_evaluator_trainer", None)
    # Under pytest-xdist a worker ends when the queue runs dry, possibly while another worker still
    # waits for the evaluator: there the training runs to its end (and the next run finds it).
    if trainer is not None and trainer.poll() is None and _xdist_worker(session.config) is None:
        os.killpg(trainer.pid, signal.SIGTERM)  # nobody needed it after all (a -k run, an early stop)
        trainer.wait()
