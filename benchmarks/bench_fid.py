"""`grader fid` vs pytorch-gan-metrics' own directory path on the same MNIST PNGs.

    nice python benchmarks/bench_fid.py [--n 300] [--repeats 3] [--device cpu]

Each run is a separate process, timed end to end (start-up, model load, decoding,
Inception, Fréchet distance), with its CPU time and peak RSS (os.wait4). Runs, in turn
(official, grader, ... then again, --repeats times; medians are compared):
  official      pytorch_gan_metrics.get_fid_from_directory (0.5.3), weights via TORCH_HOME
  grader        python -m grader fid, no feature cache (the defaults: forward threads,
                channels_last, BatchNorm folded)
  grader-nofold the same with --no-fold-batchnorm (the course tool's network unchanged)
  grader-1thr   the same with --threads 1 (one forward, torch's intra-op threads)
  grader-cached features from the cache, no forward pass (once)
  grader-N/10   a tenth of the images: peak RSS against N shows memory is bounded (once)
Work files go to benchmarks/out/fid (git-ignored). Other processes sharing the CPU skew
wall times: the load average is printed with each run, and the ratios are taken from
interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"

OFFICIAL = """
import sys, torch
from pytorch_gan_metrics import get_fid_from_directory
print(float(get_fid_from_directory(sys.argv[1], sys.argv[2], device=torch.device(sys.argv[3]))))
"""


def run(label: str, command: list[str], n: int, env: dict | None = None) -> dict:
    # A child's ru_maxrss starts from its parent's RSS at fork (Linux carries the high-water
    # mark over exec), so the parent stays small: it never imports torch.
    load = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})}, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label} failed: {command}")
    text = stdout.strip()
    fid = json.loads(text)["fid"] if text.startswith("{") else float(text.splitlines()[-1])
    row = {"run": label, "n": n, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
           "images_per_s": n / wall, "peak_rss_mb": usage.ru_maxrss / 1024, "fid": fid,
           "load": load}
    print(f"{label:14} N={n:>6}  {wall:8.1f} s wall  {row['cpu_s']:8.1f} s CPU  "
          f"{row['images_per_s']:7.2f} img/s  peak RSS {row['peak_rss_mb']:7.0f} MB  "
          f"FID {fid:.6f}  (load avg {load:.1f} at start)", flush=True)
    return row


def write_pngs(folder: Path, digits: np.ndarray) -> Path:
    if folder.is_dir() and len(list(folder.glob("*.png"))) == len(digits):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, digit in enumerate(digits):
        Image.fromarray(digit).convert("RGB").save(folder / f"{i + 1:05d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mnist", type=Path, default=SHARED / "mnist")
    parser.add_argument("--weights", type=Path, default=SHARED / "inception" /
                        "fid_inception_v3.pth")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "fid")
    parser.add_argument("--reference-digits", type=int, default=200)
    parser.add_argument("--skip", nargs="*", default=[], help="run labels to leave out")
    args = parser.parse_args()

    from grader.datasets import load_mnist  # (this process never imports torch, see run())

    args.out.mkdir(parents=True, exist_ok=True)
    test_digits, _ = load_mnist(args.mnist, "test")
    images = write_pngs(args.out / f"mnist_test_{args.n}", test_digits[: args.n])
    tenth = write_pngs(args.out / f"mnist_test_{args.n // 10}", test_digits[: args.n // 10])

    stats = args.out / f"mnist_train_{args.reference_digits}.npz"
    if not stats.exists():  # not timed: the reference the FIDs are measured against
        subprocess.run([sys.executable, "-m", "grader", "stats", str(args.mnist), "-o", str(stats),
                        "--limit", str(args.reference_digits), "--device", args.device,
                        "--inception-weights", str(args.weights),
                        "--cache-dir", str(args.out / "reference-cache")], check=True)

    torch_home = args.out / "torch_home"
    hub_file = torch_home / "hub" / "checkpoints" / WEIGHTS_FILENAME
    if not hub_file.exists():
        hub_file.parent.mkdir(parents=True, exist_ok=True)
        hub_file.symlink_to(args.weights.resolve())

    cache = args.out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    grader = [sys.executable, "-m", "grader", "fid", "--stats", str(stats), "--json",
              "--device", args.device, "--inception-weights", str(args.weights)]
    print(f"{args.n} MNIST test digits as 28x28 RGB PNGs; cpus {os.cpu_count()}; "
          f"device {args.device}; {args.repeats} interleaved repeats", flush=True)
    repeated = [
        ("official", [sys.executable, "-c", OFFICIAL, str(images), str(stats), args.device],
         args.n, {"TORCH_HOME": str(torch_home)}),
        ("grader", [*grader, str(images), "--no-cache"], args.n, None),
        ("grader-nofold", [*grader, str(images), "--no-cache", "--no-fold-batchnorm"],
         args.n, None),
        ("grader-1thr", [*grader, str(images), "--no-cache", "--threads", "1"], args.n, None),
    ]
    once = [
        ("grader-fill", [*grader, str(images), "--cache-dir", str(cache)], args.n, None),
        ("grader-cached", [*grader, str(images), "--cache-dir", str(cache)], args.n, None),
        ("grader-N/10", [*grader, str(tenth), "--no-cache"], args.n // 10, None),
    ]
    rows = []
    for _ in range(args.repeats):
        rows += [run(*spec) for spec in repeated if spec[0] not in args.skip]
    rows += [run(*spec) for spec in once if spec[0] not in args.skip]
    labels = list(dict.fromkeys(row["run"] for row in rows))
    print("\nmedians")
    median = {}
    for label in labels:
        mine = [row for row in rows if row["run"] == label]
        median[label] = {k: float(np.median([row[k] for row in mine]))
                         for k in ("wall_s", "cpu_s", "images_per_s", "peak_rss_mb", "fid")}
        m = median[label]
        print(f"{label:14} x{len(mine)}  {m['wall_s']:8.1f} s wall  {m['cpu_s']:8.1f} s CPU  "
              f"{m['images_per_s']:7.2f} img/s  peak RSS {m['peak_rss_mb']:7.0f} MB  "
              f"FID {m['fid']:.6f}")
    if "official" in median:
        official = median["official"]
        ratios = {}
        for label in labels[1:]:
            if label in [spec[0] for spec in repeated]:
                # Pair by pair: run i of each label came right after run i of the official.
                pairs = zip([r for r in rows if r["run"] == "official"],
                            [r for r in rows if r["run"] == label], strict=False)
                ratios[label] = float(np.median([o["wall_s"] / r["wall_s"] for o, r in pairs]))
            fid_diff = abs(median[label]["fid"] - official["fid"]) / official["fid"]
            speed = (f"speed-up x{ratios[label]:.2f} wall (median of paired ratios)"
                     if label in ratios else "")
            if median[label]["images_per_s"] and label != "grader-N/10":
                print(f"{label:14} {speed:42}  FID rel diff {fid_diff:.1e}")
    (args.out / "bench_fid.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
