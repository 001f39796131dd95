"""Throughput of the reference models: training steps/s and sampling images/s.

    python benchmarks/bench_reference.py --mnist ../shared/data/mnist \
        --faces ../shared/data/faces/celeba_first10k_89x109.zip [--device cpu] [--width 8]

Runs the real train/sample code paths (the same functions as ``python -m reference``) on a
small budget and prints one line per measurement. Training: a first call trains one step
(data loading, model building, warm-up); a second call resumes and trains N more; the
first call's time is subtracted from the second's, which leaves about N steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from reference.dcgan import sample_dcgan, train_dcgan
from reference.ddpm import sample_ddpm, train_ddpm


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def bench_ddpm(mnist: Path, args, work: Path) -> None:
    common = {"width": args.width, "blocks": args.blocks, "batch_size": args.batch_size,
                  "timesteps": 1000, "device": args.device, "progress": False}
    warm = _timed(train_ddpm, mnist, work / "ddpm", steps=1, save_every=1, **common)
    steps = args.train_steps
    total = _timed(train_ddpm, mnist, work / "ddpm", steps=1 + steps, save_every=steps, **common)
    print(f"ddpm train  width={args.width} blocks={args.blocks} batch={args.batch_size}: "
          f"{steps / max(total - warm, 1e-9):.2f} steps/s ({steps} steps in {total:.1f} s)")
    num = args.sample_images
    seconds = _timed(sample_ddpm, work / "ddpm", work / "ddpm_samples", num, 0,
                     batch_size=num, device=args.device, progress=False)
    print(f"ddpm sample width={args.width} T=1000 batch={num}: {num / seconds:.3f} images/s "
          f"({num} images in {seconds:.1f} s)")


def bench_dcgan(faces: Path, args, work: Path) -> None:
    common = {"width": args.width, "batch_size": args.batch_size, "limit": args.batch_size * 4,
                  "device": args.device, "progress": False}
    warm = _timed(train_dcgan, faces, work / "dcgan", steps=1, save_every=1, **common)
    steps = args.train_steps
    total = _timed(train_dcgan, faces, work / "dcgan", steps=1 + steps, save_every=steps,
                   **common)
    print(f"dcgan train width={args.width} batch={args.batch_size} 64x64: "
          f"{steps / max(total - warm, 1e-9):.2f} steps/s ({steps} steps in {total:.1f} s)")
    num = 256
    seconds = _timed(sample_dcgan, work / "dcgan", work / "dcgan_samples", num, 0,
                     device=args.device, progress=False)
    print(f"dcgan sample width={args.width}: {num / seconds:.1f} images/s (PNG writing included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, required=True)
    parser.add_argument("--faces", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--sample-images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, device {args.device}, load average {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_ddpm(args.mnist, args, Path(tmp))
        if args.faces is not None:
            bench_dcgan(args.faces, args, Path(tmp))


if __name__ == "__main__":
    main()
