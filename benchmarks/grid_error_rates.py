"""False-pass and false-fail rates of the process-grid check on generated grids.

Every grid is a real forward diffusion (linear betas 1e-4..0.02, 1000 steps, snapshots at
t = 999, 857, ..., 0) of real MNIST digits (or CelebA faces / random blobs for the content
cases), laid out by torchvision's make_grid and saved as PNG; the seed of each grid picks the
digits and the noise. Valid kinds must pass (a failure is a false fail); every defect kind must
fail (a pass is a false pass), ideally with its own finding code.

    python benchmarks/grid_error_rates.py [--n 100] [--reference DIR]

``--reference DIR`` adds an honest kind: every PNG in DIR is a process grid the reference DDPM
drew (its reverse chain, ``python benchmarks/reference_baselines.py grids`` or ``python -m
reference ddpm sample --num 0 --grid DIR/process_S.png --seed S``); each must pass.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import gridmaker as gm

from grader.checks.grid import check_process_grid
from grader.datasets import load_image_zip, load_mnist
from grader.rubric import ProcessGridArtifact

SHARED_DATA = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
SPEC = ProcessGridArtifact(kind="process_grid", content="mnist")


def swap_neighbours(tiles: np.ndarray, left: int) -> np.ndarray:
    order = np.arange(tiles.shape[1])
    order[[left, left + 1]] = order[[left + 1, left]]
    return tiles[:, order]


def kinds(digits: np.ndarray, faces: np.ndarray):
    """name -> (expected code or None for valid, maker(seed) -> (tiles, grid kwargs))."""

    def pick(seed: int, pool: np.ndarray = digits) -> np.ndarray:
        return pool[np.random.default_rng(seed).choice(len(pool), 8, replace=False)]

    def base(seed: int) -> np.ndarray:
        return gm.digit_tiles(pick(seed), seed=seed)

    def rng(seed: int) -> np.random.Generator:
        return np.random.default_rng(10_000 + seed)

    def row(seed: int) -> int:
        return int(rng(seed).integers(8))

    return {
        "valid, padding 2": (None, lambda s: (base(s), {"padding": 2})),
        "valid, padding 0": (None, lambda s: (base(s), {"padding": 0})),
        "valid, white padding": (None, lambda s: (base(s), {"padding": 2, "pad_value": 1.0})),
        "valid, reverse chain": (None, lambda s: (gm.reverse_chain_tiles(pick(s), seed=s), {})),
        "valid, grayscale PNG": (None, lambda s: (base(s), {"padding": 2 * (s % 2), "mode": "L"})),
        "reversed columns": ("grid.reversed", lambda s: (gm.reversed_columns(base(s)), {})),
        "shuffled columns": (
            "grid.column_order",
            lambda s: (gm.shuffled_columns(base(s), rng(s)), {}),
        ),
        # A limit, not a target: the first four snapshots of a linear schedule are all near-pure
        # noise, so swapping two of them changes nothing the noise estimate can see.
        "two neighbour columns swapped": (
            "grid.column_order",
            lambda s: (swap_neighbours(base(s), int(rng(s).integers(7))), {}),
        ),
        "transposed": ("grid.transposed", lambda s: (gm.transposed(base(s)), {})),
        "one all-noise row": (
            "grid.row_all_noise",
            lambda s: (gm.all_noise_row(base(s), row(s), rng(s)), {}),
        ),
        "one all-clean row": (
            "grid.row_all_clean",
            lambda s: (gm.all_clean_row(base(s), row(s)), {}),
        ),
        "one repeated row": (
            "grid.rows_repeated",
            lambda s: (
                gm.repeated_row(base(s), row(s), (row(s) + 1 + int(rng(s + 1).integers(7))) % 8),
                {},
            ),
        ),
        "starts at t=143": (
            "grid.start_not_noise",
            lambda s: (
                gm.digit_tiles(pick(s), seed=s, t_values=[143, 123, 102, 82, 61, 41, 20, 0]),
                {},
            ),
        ),
        "ends at t=143": (
            "grid.end_not_clean",
            lambda s: (
                gm.digit_tiles(pick(s), seed=s, t_values=[999, 877, 734, 592, 449, 306, 164, 143]),
                {},
            ),
        ),
        "7x8 layout": ("grid.layout", lambda s: (base(s)[:7], {"padding": 2 * (s % 2)})),
        "64 tiles in one row": (
            "grid.layout",
            lambda s: (base(s), {"padding": 2 * (s % 2), "nrow": 64}),
        ),
        "tiles of 32": (
            "grid.layout",
            lambda s: (gm.padded_tiles(base(s)), {"padding": 2 * (s % 2)}),
        ),
        "CelebA faces": ("grid.not_digits", lambda s: (gm.digit_tiles(pick(s, faces), seed=s), {})),
        "random blobs": (
            "grid.not_digits",
            lambda s: (gm.digit_tiles(gm.blob_images(8, rng(s)), seed=s), {}),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="grids per kind")
    parser.add_argument("--reference", type=Path, default=None,
                        help="a folder of process grids drawn by the reference DDPM")
    args = parser.parse_args()

    digits = np.concatenate(
        [load_mnist(SHARED_DATA / "mnist", split)[0] for split in ("train", "test")]
    )
    faces = load_image_zip(
        SHARED_DATA / "faces" / "celeba_first10k_89x109.zip", limit=2000, size=28
    )

    print(
        "| kind | grids | expected | passed | flagged, own code | flagged, other code only "
        "| error rate | other codes seen |"
    )
    print("|---|---:|---|---:|---:|---:|---|---|")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "process.png"
        for name, (expected, make) in kinds(digits, faces).items():
            passed = own = other_only = 0
            others: Counter[str] = Counter()
            for seed in range(args.n):
                tiles, kw = make(seed)
                image = gm.grid(tiles, **{k: v for k, v in kw.items() if k != "mode"})
                image.convert(kw.get("mode", "RGB")).save(path)
                codes = {
                    f.code for f in check_process_grid(path, SPEC).findings if f.severity.fails
                }
                if not codes:
                    passed += 1
                elif expected in codes:
                    own += 1
                else:
                    other_only += 1
                others.update(codes - {expected})
            seen = ", ".join(f"{c} x{k}" for c, k in others.most_common()) or "-"
            if expected is None:
                rate = f"false fail {(args.n - passed) / args.n:.1%}"
            else:
                rate = f"false pass {passed / args.n:.1%}"
            print(
                f"| {name} | {args.n} | {expected or 'pass'} | {passed} | {own} | {other_only} "
                f"| {rate} | {seen} |"
            )
        if args.reference is not None:
            reference_row(sorted(args.reference.glob("*.png")))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


def reference_row(paths: list[Path]) -> None:
    """Grids a trained sampler drew: an honest set, so every failure is a false fail."""
    failed: Counter[str] = Counter()
    passed = 0
    for path in paths:
        codes = {f.code for f in check_process_grid(path, SPEC).findings if f.severity.fails}
        passed += not codes
        failed.update(codes)
    seen = ", ".join(f"{c} x{k}" for c, k in failed.most_common()) or "-"
    rate = (len(paths) - passed) / max(len(paths), 1)
    print(f"| valid, reference DDPM grids | {len(paths)} | pass | {passed} | - | - "
          f"| false fail {rate:.1%} | {seen} |")


if __name__ == "__main__":
    main()
