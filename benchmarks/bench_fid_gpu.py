"""FID of 10,000 28x28 PNGs end to end on a GPU, the time split, and the course tool beside it.

    python benchmarks/bench_fid_gpu.py [--n 10000] [--device cuda]
    python benchmarks/bench_fid_gpu.py --device cpu --n 64 --reference-digits 64   # smoke run

The images are MNIST test digits written as RGB PNGs (synthetic digits when the IDX files
are absent). Printed:
  end to end   FidEngine.fid on the PNG folder, no feature cache: images/s and wall time
               (decoding in worker processes, pinned uint8 batches, resize + normalise on
               the device, float32 with TF32 off, float64 statistics)
  split        each stage timed alone on the same images: decode (PNG -> uint8 batches),
               transfer (uint8 host -> device), forward (x/255, resize, Inception),
               statistics (mean, covariance, Fréchet distance)
  official     pytorch_gan_metrics.get_fid_from_directory (0.5.3) on the same folder and
               device, in its own process, timed end to end, and the FID difference
  class of 100 100 x the end-to-end time: a class whose features are not yet cached
Work files go to benchmarks/out/fid_gpu (git-ignored).
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
import sys, time, torch
from pytorch_gan_metrics import get_fid_from_directory
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
start = time.perf_counter()
fid = float(get_fid_from_directory(sys.argv[1], sys.argv[2], device=torch.device(sys.argv[3])))
print(fid, time.perf_counter() - start)
"""


def digits(mnist: Path, split: str, n: int) -> tuple[np.ndarray, str]:
    from grader.datasets import load_mnist

    try:
        images, _ = load_mnist(mnist, split)
        return images[:n], f"MNIST {split}"
    except Exception as exc:  # noqa: BLE001 - any missing/unreadable IDX: synthetic digits
        print(f"MNIST not available ({exc}); synthetic digits", flush=True)
        rng = np.random.default_rng(0 if split == "test" else 1)
        canvas = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):
            y, x = rng.integers(4, 12, size=2)
            canvas[i, y : y + rng.integers(8, 16), x : x + rng.integers(3, 12)] = 255
        return canvas, "synthetic"


def write_pngs(folder: Path, pixels: np.ndarray) -> Path:
    if folder.is_dir() and len(list(folder.glob("*.png"))) == len(pixels):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, digit in enumerate(pixels):
        Image.fromarray(digit).convert("RGB").save(folder / f"{i + 1:05d}.png")
    return folder


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def split_times(engine, refs, reference) -> dict:
    """Each stage alone, in order, on the same images (the end-to-end run overlaps them)."""
    import torch

    from grader.metrics.features import image_batches, to_model_input
    from grader.metrics.frechet import feature_statistics

    device = engine.device
    pin = device.type == "cuda"
    start = time.perf_counter()
    batches = [
        b for groups in image_batches(refs, engine.batch_size, engine.workers, pin) for b in groups
    ]
    decode = time.perf_counter() - start

    synchronize(device)
    start = time.perf_counter()
    on_device = [b.to(device, non_blocking=True) for b in batches]
    synchronize(device)
    transfer = time.perf_counter() - start

    model = engine.model
    chunks = []
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in on_device:
            chunks.append(model(to_model_input(batch, device))[0].reshape(len(batch), -1))
    synchronize(device)
    forward = time.perf_counter() - start

    features = torch.cat(chunks).cpu().numpy().astype(np.float64)
    start = time.perf_counter()
    if len(features) > reference.dims:
        fid = reference.distance(*feature_statistics(features))
    else:
        fid = reference.distance_to_features(features)
    statistics = time.perf_counter() - start
    return {
        "decode_s": decode,
        "transfer_s": transfer,
        "forward_s": forward,
        "statistics_s": statistics,
        "fid": fid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--reference-digits", type=int, default=10_000)
    parser.add_argument("--mnist", type=Path, default=SHARED / "mnist")
    parser.add_argument(
        "--weights", type=Path, default=SHARED / "inception" / "fid_inception_v3.pth"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "fid_gpu")
    parser.add_argument("--no-official", action="store_true")
    args = parser.parse_args()

    import torch

    from grader.metrics import FidEngine, gray_to_rgb, list_images, save_stats
    from grader.metrics.frechet import reference_stats

    args.out.mkdir(parents=True, exist_ok=True)
    test, source = digits(args.mnist, "test", args.n)
    folder = write_pngs(args.out / f"{source.split()[0].lower()}_test_{args.n}", test)
    refs = list_images(folder)

    engine = FidEngine(
        weights=args.weights, device=args.device, batch_size=args.batch_size, use_cache=False
    )
    device = engine.device
    _ = engine.model  # built once per engine (and TF32 switched off): not timed
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{len(refs):,} {source} digits as 28x28 RGB PNGs; device {device} ({name}); "
        f"batch {engine.batch_size}, decoding workers {engine.workers}, "
        f"forward threads {engine.threads}, model {engine.model_variant}; TF32 "
        f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}",
        flush=True,
    )

    stats = args.out / f"{source.split()[0].lower()}_train_{args.reference_digits}.npz"
    if not stats.exists():  # not timed: the reference the FIDs are measured against
        train, _ = digits(args.mnist, "train", args.reference_digits)
        save_stats(stats, *engine.array_statistics(gray_to_rgb(train)))
    reference = reference_stats(stats)
    _ = reference.sqrt_sigma  # computed once per reference: not timed

    synchronize(device)
    start = time.perf_counter()
    result = engine.fid(refs, stats)
    synchronize(device)
    wall = time.perf_counter() - start
    peak = (
        f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
        if device.type == "cuda"
        else ""
    )
    print(
        f"end to end   {wall:8.2f} s  {len(refs) / wall:9.1f} img/s  FID {result.fid:.6f}{peak}",
        flush=True,
    )

    split = split_times(engine, refs, reference)
    total = sum(v for k, v in split.items() if k.endswith("_s"))
    print(
        "split        "
        + "  ".join(f"{k[:-2]} {v:.2f} s" for k, v in split.items() if k.endswith("_s"))
        + f"  (sum {total:.2f} s)"
    )
    rows = {
        "n": len(refs),
        "device": str(device),
        "device_name": name,
        "wall_s": wall,
        "images_per_s": len(refs) / wall,
        "fid": result.fid,
        "split": split,
    }

    if not args.no_official:
        torch_home = args.out / "torch_home"
        hub_file = torch_home / "hub" / "checkpoints" / WEIGHTS_FILENAME
        if not hub_file.exists():
            hub_file.parent.mkdir(parents=True, exist_ok=True)
            hub_file.symlink_to(args.weights.resolve())
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", OFFICIAL, str(folder), str(stats), str(device)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TORCH_HOME": str(torch_home)},
        )
        official_wall = time.perf_counter() - start
        official_fid, official_inner = map(float, proc.stdout.split()[-2:])
        rel = abs(result.fid - official_fid) / abs(official_fid)
        print(
            f"official     {official_wall:8.2f} s  {len(refs) / official_wall:9.1f} img/s  "
            f"FID {official_fid:.6f}  ({official_inner:.2f} s inside the process; "
            f"FID rel diff {rel:.1e}; grader x{official_wall / wall:.1f} on the whole process)"
        )
        rows["official"] = {"wall_s": official_wall, "fid": official_fid, "fid_rel_diff": rel}
    print(
        f"class of 100 ~{100 * wall / 60:.1f} min of FID for 100 such students (features not "
        f"cached; a rerun reads them from the cache)"
    )
    (args.out / f"bench_fid_gpu_{device.type}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
