"""Reference baselines measured on this machine: train a reference model in stages and, at each
milestone, sample the course's N and measure FID with the grader; every row records steps, wall
time and CPU time, into JSON and a markdown table (the table in reference/README.md).

    python benchmarks/reference_baselines.py stats   # FID statistics: CelebA 64x64, MNIST train
    python benchmarks/reference_baselines.py ddpm    # HW3 DDPM: train, sample 10,000, FID
    python benchmarks/reference_baselines.py dcgan   # HW9 DCGAN: train, sample 1,024, FID
    python benchmarks/reference_baselines.py grade   # `grader run` on the DDPM milestones' HW3
                                                     # submissions (rubrics/hw3.yaml + integrity)
    python benchmarks/reference_baselines.py grids   # process grids of the last DDPM milestone
                                                     # (seeds 0..--count-1), for
                                                     # benchmarks/grid_error_rates.py --reference
    python benchmarks/reference_baselines.py table   # results.md from the JSON files

Every command resumes where it stopped (run it again after a kill or a reboot): training
resumes from its newest checkpoint, milestone checkpoints are kept, a row's finished parts are
not redone, and the statistics are computed in chunks whose Inception features are cached.
Run them in the background, e.g.

    setsid nohup python benchmarks/reference_baselines.py ddpm \
        > benchmarks/out/reference_baselines/ddpm.log 2>&1 < /dev/null &

Options after ``--`` go to every ``train`` command (``ddpm -- --lr 5e-4``); ``--preset``,
``--device``, ``--milestones`` and ``--out`` select the recipe, the device, the rows and the
folder (``--num`` fewer images per FID, for a smoke run only).

Children run under ``nice -n 10`` with ``OMP_NUM_THREADS`` threads (``--threads``, default 1:
on a shared 2-core CPU one thread per job was fastest). Training time is the checkpoint's own
clock (the training loop's wall and process CPU seconds, carried across resumes); sampling and
FID times are the wall time and the user + system CPU time (os.wait4) of their commands.

Statistics: MNIST-train is what `grader stats MNIST_DIR --backend pytorch-gan-metrics` computes
(the same FidEngine.array_features on the 60,000 digits made RGB, then feature_statistics),
taken in chunks of 4,992 so a kill loses at most one chunk; CelebA is the same for the
10,000 faces of the HW9 zip center-cropped and resized to 64x64 (the pixels of
`python -m reference real-pngs`), with the pytorch-fid backend.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.atomic import write_text

DEFAULT_OUT = ROOT / "benchmarks" / "out" / "reference_baselines"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
CHUNK = 4992  # 312 batches of 16: the same batches as one pass over all images
HW3_RUBRIC = ROOT / "rubrics" / "hw3.yaml"

MODELS = {
    "ddpm": {
        "course": "HW3", "num": 10000, "backend": "pytorch-gan-metrics", "stats": "mnist_train.npz",
        "milestones": (2500, 5000, 7500, 10000), "data": "mnist",
    },
    "dcgan": {
        "course": "HW9", "num": 1024, "backend": "pytorch-fid", "stats": "celeba64.npz",
        "milestones": (1000, 2000, 3000, 4000), "data": "faces/celeba_first10k_89x109.zip",
    },
}


# --- running children, timed ---------------------------------------------------------------


def child_env(args) -> dict:
    env = dict(os.environ)
    threads = str(args.threads)
    env.update({
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "GRADER_FID_THREADS": threads,
        "PYTHONPATH": str(ROOT), "GRADER_CACHE_DIR": str(args.out / "cache"),
        "GRADER_INCEPTION_WEIGHTS": str(args.data / "inception" / "fid_inception_v3.pth"),
    })
    return env


def run_timed(args, command: list[str], log: Path, stdout: Path | None = None) -> dict:
    """Run ``python -m ...`` niced; returns wall and CPU seconds (user + system, os.wait4)."""
    # nice adds to the caller's niceness: ask for the difference, so children run at --nice
    full = ["nice", "-n", str(max(0, args.nice - os.nice(0))), sys.executable, *command]
    say(f"$ {' '.join(command)}")
    start = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err, open(stdout or log, "ab") as out:
        process = subprocess.Popen(full, stdout=out, stderr=err, env=child_env(args), cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}; see {log}")
    return {"wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def say(text: str) -> None:
    print(f"[{datetime.now().strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)


class Results:
    """results_<name>.json, rewritten atomically after every change, and results.md."""

    def __init__(self, out: Path, name: str):
        self.out, self.path = out, out / f"results_{name}.json"
        self.lock = threading.Lock()
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def update(self, *keys_and_value) -> None:
        *keys, last, value = keys_and_value
        with self.lock:
            node = self.data
            for key in keys:
                node = node.setdefault(str(key), {})
            node[str(last)] = value
            write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")
            write_text(self.out / "results.md", markdown(self.out))


def hold_lock(out: Path, name: str):
    """One driver per command: a second one exits at once (the lock dies with its holder)."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / f".{name}.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another `{name}` driver is running in {out}")
    return handle


# --- statistics ----------------------------------------------------------------------------


def chunked_statistics(args, name: str, backend: str, pixels: np.ndarray, results: Results) -> None:
    from grader.metrics import save_stats
    from grader.metrics.fid import FidEngine
    from grader.metrics.frechet import feature_statistics

    target = args.out / name
    if target.exists():
        say(f"{target} exists")
        return
    os.environ.update(child_env(args))
    engine = FidEngine(backend, device=args.device, threads=args.threads, progress=False,
                       cache_dir=args.out / "cache",
                       weights=args.data / "inception" / "fid_inception_v3.pth")
    features, wall, cpu = [], 0.0, 0.0
    for start in range(0, len(pixels), CHUNK):
        t0, c0 = time.perf_counter(), time.process_time()
        features.append(engine.array_features(pixels[start : start + CHUNK]))
        dw, dc = time.perf_counter() - t0, time.process_time() - c0
        wall, cpu = wall + dw, cpu + dc
        say(f"{name}: images {start + len(features[-1]):,}/{len(pixels):,} "
            f"({dw:.0f} s wall, {dc:.0f} s CPU for this chunk; cached chunks take ~0 s)")
    mu, sigma = feature_statistics(np.concatenate(features))
    save_stats(target, mu, sigma)
    results.update(name, {"n": len(pixels), "backend": backend, "wall_s": round(wall, 1),
                          "cpu_s": round(cpu, 1), "at": now()})
    say(f"wrote {target}")


def command_stats(args) -> None:
    import torch

    from grader.datasets import load_mnist
    from grader.metrics import gray_to_rgb
    from reference.data import load_faces

    torch.set_num_threads(args.threads)
    results = Results(args.out, "stats")
    # CelebA first: 10,000 images against MNIST's 60,000, so the DCGAN rows need not wait
    faces = load_faces(args.data / MODELS["dcgan"]["data"], 64).permute(0, 2, 3, 1).numpy()
    chunked_statistics(args, "celeba64.npz", "pytorch-fid", np.ascontiguousarray(faces), results)
    digits, _ = load_mnist(args.data / "mnist", "train")
    chunked_statistics(args, "mnist_train.npz", "pytorch-gan-metrics", gray_to_rgb(digits), results)


# --- training and milestones ---------------------------------------------------------------


def milestone_path(run: Path, step: int) -> Path:
    return run / "milestones" / f"ckpt_{step:07d}.pt"


def train_milestones(args, model: str, run: Path, results: Results, failed: list) -> None:
    """Train segment by segment up to each milestone; keep a copy of each milestone."""
    try:
        for step in args.milestones:
            target = milestone_path(run, step)
            if target.exists():
                continue
            command = ["-m", "reference", model, "train", "--data", str(args.data / MODELS[model]["data"]),
                       "--out", str(run / "train"), "--preset", args.preset, "--steps", str(step),
                       "--device", args.device, "--quiet", *args.train_args]
            usage = run_timed(args, command, run / "train.log")
            results.update("segments", step, {**usage, "at": now()})
            source = run / "train" / f"ckpt_{step:07d}.pt"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)
            shutil.copy2(run / "train" / "loss.png", run / "milestones" / f"loss_{step:07d}.png")
            say(f"{model}: milestone {step} saved")
    except BaseException as exc:  # the evaluation loop stops waiting
        failed.append(exc)
        raise


def checkpoint_facts(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    losses = state["losses"]
    last = losses[-200:] if isinstance(losses, list) else losses["generator"][-200:]
    facts = {"step": state["step"], "config": state["config"],
             "train_wall_s": round(state.get("clock", {}).get("wall_s", float("nan")), 1),
             "train_cpu_s": round(state.get("clock", {}).get("cpu_s", float("nan")), 1)}
    if isinstance(losses, list):
        facts["loss_last_200"] = round(float(np.mean([v for _, v in last])), 5)
    else:
        for part in ("generator", "discriminator"):
            values = [v for _, v in losses[part][-200:]]
            facts[f"loss_{part[0]}_last_200"] = round(float(np.mean(values)), 4)
    return facts


def wait_for(path: Path, failed: list, what: str) -> None:
    announced = False
    while not path.exists():
        if failed:
            raise RuntimeError(f"stopped waiting for {what}: {failed[0]}")
        if not announced:
            say(f"waiting for {what} ({path})")
            announced = True
        time.sleep(30)


def evaluate(args, model: str, run: Path, step: int, results: Results, failed: list) -> None:
    spec = MODELS[model]
    row = results.data.get("rows", {}).get(str(step), {})
    if "fid" in row:
        return
    checkpoint = milestone_path(run, step)
    wait_for(checkpoint, failed, f"the step-{step} checkpoint")
    num = args.num or spec["num"]
    row = {**row, **checkpoint_facts(checkpoint), "n": num, "backend": spec["backend"],
           "load_average": round(os.getloadavg()[1], 1)}
    images = run / "samples" / f"step_{step:07d}"
    if "sample_cpu_s" not in row:
        if model == "ddpm":
            work = run / "hw3" / f"step_{step:07d}"
            command = ["-m", "reference", "ddpm", "hw3-submission", "--checkpoint", str(checkpoint),
                       "--out", str(work), "--student-id", student_id(step), "--num", str(num),
                       "--seed", "0", "--device", args.device, "--quiet"]
            usage = run_timed(args, command, run / "sample.log")
            if images.exists():
                shutil.rmtree(images)
            images.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / "images", images)
            row["sampler"] = sampler_of(checkpoint)
            row["submission"] = str(work.relative_to(args.out))
        else:
            grid = run / "samples" / f"grid4x4_{step:07d}.png"
            command = ["-m", "reference", "dcgan", "sample", "--checkpoint", str(checkpoint),
                       "--output", str(images), "--num", str(num), "--seed", "0",
                       "--grid", str(grid), "--device", args.device, "--quiet"]
            usage = run_timed(args, command, run / "sample.log")
            row["grid"] = str(grid.relative_to(args.out))
        row.update({"sample_wall_s": usage["wall_s"], "sample_cpu_s": usage["cpu_s"]})
        results.update("rows", step, row)
    stats = args.out / spec["stats"]
    wait_for(stats, failed, spec["stats"])
    answer = run / "samples" / f"fid_{step:07d}.json"
    usage = run_timed(args, ["-m", "grader", "fid", str(images), "--stats", str(stats),
                             "--backend", spec["backend"], "--device", args.device,
                             "--threads", str(args.threads), "--json"],
                      run / "fid.log", stdout=answer)
    fid = json.loads(answer.read_text())
    row.update({"fid": round(fid["fid"], 3), "fid_wall_s": usage["wall_s"],
                "fid_cpu_s": usage["cpu_s"], "fid_provenance": fid["provenance"], "at": now()})
    results.update("rows", step, row)
    say(f"{model} step {step}: FID {row['fid']:.2f} at N = {num:,}")


def sampler_of(checkpoint: Path) -> str:
    from reference.ddpm import describe_sampler
    from reference.presets import ddpm_sampling
    from reference.training import load_checkpoint

    config = load_checkpoint(checkpoint, "ddpm")["config"]
    return describe_sampler(ddpm_sampling(config.get("preset"), None, {}), config["timesteps"])


def student_id(step: int) -> str:
    return f"R{step:07d}"  # matches HW3's id pattern: a letter and 5 to 12 digits


def command_train(args, model: str) -> None:
    run = args.out / model
    results = Results(args.out, model)
    results.update("setup", {"preset": args.preset, "milestones": list(args.milestones),
                             "threads": args.threads, "nice": args.nice,
                             "train_args": args.train_args, "machine": machine()})
    failed: list = []
    trainer = threading.Thread(target=train_milestones, args=(args, model, run, results, failed),
                               daemon=True)
    trainer.start()
    for step in args.milestones:
        evaluate(args, model, run, step, results, failed)
    trainer.join()
    if model == "ddpm" and not args.no_grade:
        command_grade(args)


# --- grading the HW3 submissions ----------------------------------------------------------


def command_grade(args) -> None:
    """Every DDPM milestone's HW3 submission, graded by `grader run` with rubrics/hw3.yaml
    plus an integrity metric (training-set copies, flag only) against the MNIST training set."""
    import yaml

    run = args.out / "ddpm"
    grade = args.out / "grade"
    submissions = grade / "submissions"
    for work in sorted((run / "hw3").glob("step_*")):
        sid = student_id(int(work.name.split("_")[1]))
        folder = submissions / sid
        if not (folder / f"{sid}.zip").exists():
            folder.mkdir(parents=True, exist_ok=True)
            for name in (f"{sid}.zip", f"{sid}_process.png", f"{sid}_source.zip"):
                shutil.copy2(work / name, folder / name)
    rubric = yaml.safe_load(HW3_RUBRIC.read_text())
    rubric["metrics"]["fid"]["stats"] = str(args.out / "mnist_train.npz")
    rubric["metrics"]["integrity"] = {"kind": "integrity", "artifact": "images",
                                      "training": str(args.data / "mnist"), "action": "flag"}
    rubric_path = grade / "hw3_with_integrity.yaml"
    write_text(rubric_path, yaml.safe_dump(rubric, sort_keys=False))
    # Handed in on time: without a times file the files' modification times would count, and
    # a run after the rubric's deadline would be graded as late.
    due = datetime.fromisoformat(str(rubric["late"]["due"]))
    times = grade / "times.csv"
    write_text(times, "student_id,submitted_at\n" + "".join(
        f"{folder.name},{(due - timedelta(hours=1)).isoformat()}\n"
        for folder in sorted(submissions.iterdir())))
    results = Results(args.out, "grade")
    usage = run_timed(args, ["-m", "grader", "run", str(submissions), "--rubric", str(rubric_path),
                             "--times", str(times), "--device", args.device, "--no-sandbox",
                             "--out", str(grade / "results")],
                      grade / "grade.log")
    results.update("run", {**usage, "at": now()})
    export = grade / "grades.csv"
    run_timed(args, ["-m", "grader", "export", str(grade / "results"), "--format", "csv",
                     "--out", str(export)], grade / "grade.log")
    results.update("export", str(export.relative_to(args.out)))
    say(f"graded: see {grade / 'results'} and {export}")


# --- process grids for the grid benchmark ---------------------------------------------------


def command_grids(args) -> None:
    import torch

    from reference.ddpm import load_sampler, write_process_grid

    torch.set_num_threads(args.threads)
    milestones = sorted((args.out / "ddpm" / "milestones").glob("ckpt_*.pt"))
    if not milestones:
        sys.exit("no DDPM milestone yet: run the `ddpm` command first")
    model, schedule = load_sampler(milestones[-1], torch.device(args.device))
    folder = args.out / "ddpm" / "grids" / milestones[-1].stem
    for seed in range(args.count):
        target = folder / f"process_{seed:04d}.png"
        if not target.exists():
            write_process_grid(model, schedule, target, seed, device=args.device)
            say(f"wrote {target}")


# --- tables --------------------------------------------------------------------------------


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def machine() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()[0]}


def hours(seconds) -> str:
    if seconds is None or np.isnan(seconds):
        return "-"
    return f"{seconds / 3600:.2f} h"


def markdown(out: Path) -> str:
    lines = ["# Reference baselines on this machine", ""]
    for model, spec in MODELS.items():
        path = out / f"results_{model}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        rows = data.get("rows", {})
        setup = data.get("setup", {})
        n = next((row["n"] for row in rows.values() if "n" in row), spec["num"])
        title = (f"## {model.upper()} ({spec['course']}, preset {setup.get('preset')}, "
                 f"FID at N = {n:,}, {spec['backend']})")
        lines += [title, ""]
        if model == "ddpm":
            lines += [("| steps | epochs | train wall | train CPU | sampler | sample wall "
                       "| sample CPU | train + sample CPU | FID |"), "|---" * 9 + "|"]
        else:
            lines += ["| steps | epochs | train wall | train CPU | sample wall | sample CPU | FID |",
                      "|---|---|---|---|---|---|---|"]
        for step in sorted(rows, key=int):
            row = rows[step]
            config = row.get("config", {})
            epochs = int(step) * config.get("batch_size", 0) / max(config.get("num_images", 1), 1)
            fid = f"{row['fid']:.2f}" if "fid" in row else "pending"
            common = [f"{int(step):,}", f"{epochs:.1f}", hours(row.get("train_wall_s")),
                      hours(row.get("train_cpu_s"))]
            if model == "ddpm":
                total = (row.get("train_cpu_s") or 0) + (row.get("sample_cpu_s") or float("nan"))
                cells = common + [row.get("sampler", "-"), hours(row.get("sample_wall_s")),
                                  hours(row.get("sample_cpu_s")), hours(total), fid]
            else:
                cells = common + [hours(row.get("sample_wall_s")), hours(row.get("sample_cpu_s")), fid]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def command_table(args) -> None:
    text = markdown(args.out)
    write_text(args.out / "results.md", text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["stats", "ddpm", "dcgan", "grade", "grids", "table"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--milestones", type=lambda s: tuple(int(x) for x in s.split(",")),
                        default=None, help="comma-separated training steps (default per model)")
    parser.add_argument("--device", default="cpu", help="for every child: cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--no-grade", action="store_true", help="ddpm: do not run `grade` after")
    parser.add_argument("--count", type=int, default=20, help="grids: how many")
    parser.add_argument("--num", type=int, default=None,
                        help="images per FID (default: the course's N; fewer for a smoke run)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.train_args = argv[split + 1 :]  # more `train` options, after --
    args.out, args.data = args.out.resolve(), args.data.resolve()
    if args.command in MODELS and args.milestones is None:
        args.milestones = MODELS[args.command]["milestones"]
    _lock = hold_lock(args.out, args.command)  # held until exit
    say(f"{args.command}: out {args.out}")
    if args.command == "stats":
        command_stats(args)
    elif args.command in MODELS:
        command_train(args, args.command)
    elif args.command == "grade":
        command_grade(args)
    elif args.command == "grids":
        command_grids(args)
    else:
        command_table(args)


if __name__ == "__main__":
    main()
