"""Milliseconds per process grid for check_process_grid (CPU only, numpy).

Grids are real forward diffusions of real MNIST test digits written as PNG first; only the
check is timed (open + decode + layout + noise + rows + digits).

    python benchmarks/bench_grid.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import gridmaker as gm

from grader.checks.grid import check_process_grid
from grader.datasets import load_mnist
from grader.rubric import ProcessGridArtifact

SHARED_DATA = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
SPEC = ProcessGridArtifact(kind="process_grid", content="mnist")


def timed(fn, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU milliseconds per call (CPU time is the fairer number on a shared machine)."""
    fn(paths[0])  # warm-up: imports, first allocations
    wall, cpu = [], []
    for path in paths:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(path)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return np.array(wall), np.array(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="grids per case")
    args = parser.parse_args()
    digits = load_mnist(SHARED_DATA / "mnist", "test")[0]
    cases = {
        "valid, padding 2 (242x242)": {"padding": 2},
        "valid, padding 0 (224x224)": {"padding": 0},
        "64 tiles in one row (layout search)": {"padding": 2, "nrow": 64},
    }
    print("| case | grids | median ms | mean ms | p95 ms | max ms | median CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in cases.items():
            paths = []
            for seed in range(args.n):
                picked = digits[np.random.default_rng(seed).choice(len(digits), 8, replace=False)]
                path = Path(tmp) / f"{seed}_{len(paths)}_{kw['padding']}_{kw.get('nrow', 8)}.png"
                gm.grid(gm.digit_tiles(picked, seed=seed), **kw).save(path)
                paths.append(path)
            ms, cpu = timed(lambda p: check_process_grid(p, SPEC), paths)
            print(
                f"| {name} | {len(ms)} | {np.median(ms):.1f} | {ms.mean():.1f} "
                f"| {np.percentile(ms, 95):.1f} | {ms.max():.1f} | {np.median(cpu):.1f} |"
            )


if __name__ == "__main__":
    main()
