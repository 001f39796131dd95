"""Does torch.compile make the FID forward pass faster on this CPU, and keep its numbers?

    nice python benchmarks/bench_compile.py [--batches 8] [--batch 16] [--threads 1]

The model is the one `grader fid` runs by default (pytorch-gan-metrics' InceptionV3, BatchNorm
folded, channels_last) on real MNIST test digits. Eager and compiled (inductor, default mode)
forward passes run on the same batches, alternating, after a warm-up; the time to compile is
printed apart. Features are compared to the eager ones (max relative difference).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from grader.datasets import load_mnist
from grader.metrics.features import configure_determinism, to_model_input
from grader.metrics.inception import build_inception, fold_batchnorm, get_backend, load_state_dict

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def features(model, batch: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        (pool,) = model(to_model_input(batch, torch.device("cpu")))
    return pool.reshape(len(batch), -1).numpy().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mnist", type=Path, default=SHARED / "mnist")
    parser.add_argument("--weights", type=Path, default=SHARED / "inception" / "fid_inception_v3.pth")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    configure_determinism()
    digits, _ = load_mnist(args.mnist, "test")
    rgb = np.repeat(digits[: args.batches * args.batch, :, :, None], 3, axis=3)
    batches = [torch.from_numpy(rgb[i : i + args.batch]) for i in range(0, len(rgb), args.batch)]

    model = build_inception(get_backend("pytorch-gan-metrics"), load_state_dict(args.weights))
    model = fold_batchnorm(model).to(memory_format=torch.channels_last)
    compiled = torch.compile(model)

    start = time.perf_counter()
    features(compiled, batches[0])
    compile_s = time.perf_counter() - start
    features(model, batches[0])

    walls = {"eager": 0.0, "compiled": 0.0}
    outputs: dict[str, list[np.ndarray]] = {"eager": [], "compiled": []}
    for batch in batches:
        for label, net in (("eager", model), ("compiled", compiled)):
            start = time.perf_counter()
            outputs[label].append(features(net, batch))
            walls[label] += time.perf_counter() - start
    eager, comp = np.concatenate(outputs["eager"]), np.concatenate(outputs["compiled"])
    rel = float(np.max(np.abs(comp - eager)) / np.max(np.abs(eager)))
    n = len(rgb)
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), {n} images in batches of {args.batch}")
    print(f"compile (first batch): {compile_s:.1f} s")
    for label, wall in walls.items():
        print(f"{label:9} {wall:7.2f} s  {n / wall:6.2f} img/s")
    print(f"compiled / eager speed: x{walls['eager'] / walls['compiled']:.3f}; "
          f"features max |diff| / max |eager| = {rel:.1e}")


if __name__ == "__main__":
    main()
