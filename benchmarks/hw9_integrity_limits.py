"""The integrity limits of rubrics/hw9.yaml, measured on real faces and on collapsed sets.

    python benchmarks/hw9_integrity_limits.py [--faces ../shared/data/faces/celeba_first10k_89x109.zip]
        [--n 1024] [--samples DIR ...]

Honest sets: ``--n`` real CelebA crops (64x64, as the HW9 set is made) from the training faces,
plain and Gaussian-blurred (radius 1 and 1.5, a GAN's soft faces), and ``--samples`` folders of
generated images (e.g. the reference DCGAN's 1,024 samples). For each set: the distance from
each image to its nearest other image of the set (the near-duplicate test, in the integrity
kind's thumbnails, pixel L2 with values in [0, 1]) and the share of images below the
rubric's ``near_duplicate_l2``. The copy test is measured on faces the training set does not
hold: the last ``--n`` faces against the first 10,000 - n.

Collapsed sets: ``--n`` images drawn from K distinct faces (K = 8, 32, 128), each draw shifted
by up to 2 px at 64x64, with pixel noise sigma 2/255 and brightness +-5% (a collapsed
generator repeats a few faces with small variations); their near-duplicate share must be far
above ``max_near_duplicate_share``.

Measured with the rubric's limits (thumbnail 32, near_duplicate_l2 2.0, 10%, ratio 0.4):

| set (1,024 images)        | nearest other: min | 1%   | median | share within 2.0 |
|---------------------------|--------------------|------|--------|------------------|
| real crops                | 5.54               | 6.67 | 10.87  | 0.0%             |
| real, blur radius 1       | 4.65               | 5.92 | 10.00  | 0.0%             |
| real, blur radius 1.5     | 4.05               | 5.30 | 9.34   | 0.0%             |
| reference DCGAN, 5,000 steps (FID 101.1) | 5.83 | 6.20 | 10.16 | 0.0%       |
| reference DCGAN, 6,000 steps (FID 93.1)  | 6.21 | 6.82 | 10.26 | 0.0%       |
| collapsed: 8 faces        | 0.25               | 0.26 | 0.35   | 98.6%            |
| collapsed: 32 faces       | 0.25               | 0.27 | 0.96   | 68.4%            |
| collapsed: 128 faces      | 0.27               | 0.29 | 3.34   | 23.7%            |

Copy test, last 1,024 faces against the first 8,976: lowest ratio 0.668 (1%: 0.798, median
0.945), none flagged; blurred 1.5: 0.635, none; the 1,024 training faces themselves: all;
the reference DCGAN's 1,024 samples (reference/README.md, seed 0) at 5,000 and 6,000 steps:
lowest 0.791 and 0.788, none flagged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.datasets import center_crop_resize, load_image_zip
from grader.image_files import list_images, load_rgb
from grader.integrity.collapse import nearest_other
from grader.integrity.copies import PHOTO_VARIANTS, check_copies
from grader.integrity.training import TrainingSet, prepare_submission


def thumbnails(faces: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(center_crop_resize(Image.fromarray(a), size)) for a in faces])


def blurred(faces: np.ndarray, radius: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.stack([np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(radius))) for a in faces])


def collapsed(faces: np.ndarray, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    base = faces[rng.choice(len(faces), k, replace=False)][rng.integers(0, k, n)].astype(np.float64)
    out = np.empty_like(base)
    for i, (dy, dx) in enumerate(rng.integers(-2, 3, (n, 2))):
        out[i] = np.roll(base[i], (dy, dx), axis=(0, 1))
    out *= rng.uniform(0.95, 1.05, (n, 1, 1, 1))
    out += rng.normal(0, 2, out.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def describe(name: str, distances: np.ndarray, limit: float) -> str:
    q = np.quantile(distances, [0.0, 0.001, 0.01, 0.5])
    share = float((distances < limit).mean())
    return (
        f"| {name} | {len(distances)} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} | {q[3]:.2f} | "
        f"{share:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared/data/faces/celeba_first10k_89x109.zip")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--samples", type=Path, nargs="*", default=[])
    parser.add_argument("--rubric", type=Path, default=ROOT / "rubrics" / "hw9.yaml")
    args = parser.parse_args()
    spec = yaml.safe_load(args.rubric.read_text())["metrics"]["integrity_gan"]
    size, limit = spec.get("thumbnail", 32), spec["near_duplicate_l2"]
    share_limit, ratio = spec["max_near_duplicate_share"], spec.get("ratio", 0.4)
    print(f"rubric: thumbnail {size}, near_duplicate_l2 {limit}, max share {share_limit:.0%}, ratio {ratio}")

    faces = load_image_zip(args.faces, size=64)  # [10000, 64, 64, 3], sorted by name
    rng = np.random.default_rng(0)
    pick = faces[rng.choice(len(faces), args.n, replace=False)]
    training = TrainingSet(thumbnails(faces, size), None, "bench")
    index = training.index()

    print("\nnear-duplicate test: distance to the nearest other image of the set")
    print("| set | N | min | 0.1% | 1% | median | share below the limit |\n|---|---|---|---|---|---|---|")
    sets = {
        f"{args.n} real crops": pick,
        "the same, blur radius 1": blurred(pick, 1.0),
        "the same, blur radius 1.5": blurred(pick, 1.5),
    }
    for folder in args.samples:
        sets[f"samples {folder.name}"] = np.stack([load_rgb(p) for p in list_images(folder)])
    for k in (8, 32, 128):
        sets[f"collapsed: {k} faces"] = collapsed(faces, k, args.n, rng)
    for name, images in sets.items():
        # A radius beyond every distance: each nearest distance exact, not only the decision.
        distances, _ = nearest_other(prepare_submission(list(images), training), 1e6, index)
        print(describe(name, distances, limit))

    print(f"\ncopy test: the last {args.n} faces against the first {len(faces) - args.n} (ratio d1/d2)")
    held_out = TrainingSet(thumbnails(faces[: -args.n], size), None, "bench-held-out")
    queries = {
        "real faces, not in training": faces[-args.n :],
        "the same, blur radius 1.5": blurred(faces[-args.n :], 1.5),
        "training faces (copies)": faces[: args.n],
    }
    for folder in args.samples:
        queries[f"samples {folder.name}"] = sets[f"samples {folder.name}"]
    held_indexes = held_out.indexes(PHOTO_VARIANTS)
    print("| set | N | lowest ratio | 1% | median | flagged (< ratio) |\n|---|---|---|---|---|---|")
    for name, images in queries.items():
        check = check_copies(prepare_submission(list(images), held_out), held_indexes, ratio, PHOTO_VARIANTS)
        q = np.quantile(check.ratio, [0.0, 0.01, 0.5])
        print(f"| {name} | {len(images)} | {q[0]:.3f} | {q[1]:.3f} | {q[2]:.3f} | {check.count} |")


if __name__ == "__main__":
    main()
