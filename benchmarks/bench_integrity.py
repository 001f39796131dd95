"""Integrity checks on real MNIST: the detection table and the cost per submission.

    python benchmarks/bench_integrity.py [--mnist ../shared/data/mnist] [--ddpm DIR] [--pool 2000]
        [--cost-only] [--repeats 3] [--reference [N]] [--sweep]

Detection: each image's ratio test depends on that image alone, so the ratio of every planted
copy (``--pool`` altered training digits per kind) and of every honest image is computed once,
and 10,000-image submissions are then drawn from these pools (``--trials`` per cell): a
submission is flagged at ``--min-flagged`` flagged images. Honest sets: the 10,000 MNIST test
digits, the same digits augmented (scaled 0.8-1.2, turned up to 25 degrees, a third thickened
and a third thinned: tests/integrity_plants.augmented) and, with ``--ddpm``, a folder of
reference-DDPM samples (python -m reference ddpm sample).
Cost: all checks on one 10,000-image honest submission against the 60,000 training digits
(median of ``--repeats``), each beside its plain counterpart on the same data in the same
repeat (old/new ratios): the plain three-pass search (every pixel, three variants) on 1,000
queries, the classifier as reference.classifier runs it, the near-duplicate search on the
set's own PCA. ``--reference N``: the flags and ratios of the fast search against a brute-force
reference (every training digit, float64 re-ranking) on N test digits and N/4 planted copies
of each kind. ``--sweep``: every combination of a scaling (0.8, 0.9, 1.1, 1.2), a turn (-25,
-15, 15, 25 degrees) and thinner or thicker strokes, each at a 5% share. The class-wide pair
screen of 100 students (98 with synthetic distinct signatures, one real shared pair) closes
the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import integrity_plants as plants

from grader.image_files import list_images, load_rgb
from grader.integrity.collapse import check_collapse, digit_labels
from grader.integrity.copies import REFERENCES, STRICTER, VARIANTS, check_copies, variant_queries
from grader.integrity.neighbours import as_vectors
from grader.integrity.redrawn import redrawn_scores
from grader.integrity.shared import Signature, shared_pairs, signature
from grader.integrity.training import load_training


def timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def detection(pool_flags, honest_flags, share, n, min_flagged, trials, rng) -> float:
    hits = 0
    k = round(share * n)
    for _ in range(trials):
        planted = pool_flags[rng.integers(0, len(pool_flags), k)].sum()
        honest = (
            honest_flags[rng.choice(len(honest_flags), n - k, replace=True)].sum() if n > k else 0
        )
        hits += planted + honest >= min_flagged
    return hits / trials


def brute_force(images: np.ndarray, indexes) -> np.ndarray:
    """Lowest d1/d2 over every variant against every reference row: a float32 screen of all
    distances, its 8 nearest re-ranked in float64."""
    lowest = np.full(len(images), np.inf)
    for name in VARIANTS:
        if name == "redrawn":  # no nearest-two search: its exact candidates, drawn again
            training = indexes["pixels"].codes.numpy().reshape(-1, *images.shape[1:])
            ratio = redrawn_scores(images, indexes[REFERENCES[name]], training)[0]
            lowest = np.minimum(lowest, ratio / STRICTER[name])
            continue
        rows, variant = variant_queries(images, name)
        ref = indexes[REFERENCES[name]].vectors
        norms = ref.square().sum(1)
        vectors = as_vectors(variant)
        for start in range(0, len(vectors), 500):
            q = vectors[start : start + 500]
            screen = torch.addmm(norms[None, :], q, ref.T, alpha=-2)
            nearest = torch.topk(screen, 8, dim=1, largest=False).indices
            d = (ref[nearest].double() - q[:, None].double()).square().sum(-1).sqrt()
            d = torch.topk(d, 2, dim=1, largest=False).values.numpy()
            ratio = np.where(d[:, 1] > 0, d[:, 0] / np.maximum(d[:, 1], 1e-12), 0.0)
            part = rows[start : start + len(q)]
            lowest[part] = np.minimum(lowest[part], ratio / STRICTER.get(name, 1.0))
    return lowest


def compare_with_brute_force(honest, training_images, indexes, args, rng) -> None:
    kinds = {**plants.alterations(rng), **plants.partial_catches(rng), **plants.known_misses(rng)}
    k = max(1, len(honest) // 4)
    planted = [
        alter(training_images[rng.choice(len(training_images), k, replace=False)])
        for alter in kinds.values()
    ]
    images = np.concatenate([honest, *planted])
    truth, t_brute = timed(brute_force, images, indexes)
    check, t_fast = timed(check_copies, images, indexes, args.threshold)
    flagged = check.flagged
    same = int((flagged == (truth < args.threshold)).sum())
    print(
        f"\nfast search vs brute force on {len(images)} images ({len(honest)} test digits, "
        f"{k} planted copies of each of {len(kinds)} kinds): flags equal on {same}/{len(images)}, "
        f"{int(flagged.sum())} flagged, largest ratio difference on flagged images "
        f"{np.abs(check.ratio[flagged] - truth[flagged]).max(initial=0):.4f}, exhaustive "
        f"searches {check.exhaustive}; {t_brute:.1f} s vs {t_fast:.1f} s"
    )
    if same != len(images):
        raise SystemExit("the fast search disagrees with the brute force")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--ddpm", type=Path, default=None)
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--min-flagged", type=int, default=25)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cost-only", action="store_true", help="skip the detection tables")
    parser.add_argument("--reference", type=int, nargs="?", const=2000, default=0)
    parser.add_argument("--sweep", action="store_true",
                        help="also every scale x turn x stroke combination (32 kinds)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    from grader.datasets import load_mnist

    with tempfile.TemporaryDirectory() as cache:
        training, t_load = timed(load_training, args.mnist, Path(cache))
        _, t_cached = timed(load_training, args.mnist, Path(cache))
    built = {ref: timed(training.index, ref) for ref in dict.fromkeys(REFERENCES.values())}
    indexes = {ref: index for ref, (index, _) in built.items()}
    index = indexes["pixels"]
    print(f"training: prepare {t_load:.2f} s, from cache {t_cached:.2f} s, indexes "
          + ", ".join(f"{ref} {t:.2f} s" for ref, (_, t) in built.items()))
    test, test_labels = load_mnist(args.mnist, "test")

    from reference.classifier import classify_digits

    hist = training.histogram
    if not args.cost_only:
        honest = {
            "MNIST test (10,000)": test,
            "MNIST test augmented (10,000)": plants.augmented(test, np.random.default_rng(5)),
        }
        if args.ddpm is not None:
            refs = list_images(args.ddpm)
            honest[f"reference DDPM ({len(refs)})"] = np.stack([load_rgb(r)[..., 0] for r in refs])
        honest_checks = {}
        for name, images in honest.items():
            check = check_copies(images, indexes, args.threshold)
            honest_checks[name] = check
            print(
                f"honest {name}: flagged {check.count}, lowest ratio {check.ratio.min():.3f}, "
                f"1st percentile {np.percentile(check.ratio, 1):.3f}"
            )
        honest_flags = honest_checks["MNIST test (10,000)"].flagged

        source = training.images[rng.choice(len(training.images), args.pool, replace=False)]
        kinds = {**plants.alterations(rng), **plants.partial_catches(rng), **plants.known_misses(rng)}
        shares = (0.05, 0.20, 0.50, 1.0)
        print(
            "\n| planted kind | images flagged | " + " | ".join(f"{s:.0%}" for s in shares) + " |"
        )
        print("|---|---|" + "---|" * len(shares))
        for name, alter in kinds.items():
            check = check_copies(alter(source), indexes, args.threshold)
            cells = [
                detection(check.flagged, honest_flags, s, 10000, args.min_flagged, args.trials, rng)
                for s in shares
            ]
            print(
                f"| {name} | {check.flagged.mean():.1%} | "
                + " | ".join(f"{c:.1%}" for c in cells)
                + " |"
            )
        for name, check in honest_checks.items():
            print(
                f"| honest: {name} | {check.flagged.mean():.2%} | submission flagged: "
                f"{check.count >= args.min_flagged} |"
            )

        if args.sweep:
            print("\n| scale, turn, strokes (sweep) | images flagged | 5% |\n|---|---|---|")
            for name, alter in plants.combinations().items():
                check = check_copies(alter(source), indexes, args.threshold)
                cell = detection(check.flagged, honest_flags, 0.05, 10000, args.min_flagged,
                                 args.trials, rng)
                print(f"| {name} | {check.flagged.mean():.1%} | {cell:.1%} |")

        print("\ncollapse (near-duplicate share, class TV distance, largest class share):")
        sets = {
            "MNIST test 10,000": test,
            "50 distinct repeated to 10,000": plants.repeated(test, 50, 10000),
            "one digit (all 7s of the test set)": test[test_labels == 7],
        }
        for name, images in honest.items():
            sets.setdefault(f"honest {name}", images)
        for name, images in sets.items():
            c = check_collapse(images, digit_labels(images), hist, basis=index)
            print(
                f"  {name}: {c.near_duplicate_share:.3f}, {c.tv_distance:.3f}, {c.largest_class_share:.3f}"
            )

    if args.reference:
        compare_with_brute_force(test[: args.reference], training.images, indexes, args, rng)

    # Cost of all checks on one 10,000-image submission (median of --repeats), each beside its
    # plain counterpart in the same repeat.
    names = [f"{i:05d}.png" for i in range(len(test))]
    queries = as_vectors(test[:1000])
    reference = index.vectors

    def plain() -> None:
        for q in (queries, queries.flip(1), queries):
            torch.topk(
                torch.addmm(index.norms_sq[None, :], q, reference.T, alpha=-2),
                2,
                dim=1,
                largest=False,
            )

    costs = {"copies": [], "collapse": [], "signature": [], "classifier": []}
    pairs = {"copies, 1,000": [], "classifier": [], "collapse": []}
    for _ in range(args.repeats):
        costs["copies"].append(timed(check_copies, test, indexes, args.threshold)[1])
        # Like with like: the plain search knows only the first three variants.
        t_plain = timed(plain)[1]
        t_fast = timed(check_copies, test[:1000], indexes, variants=("raw", "centred", "flip"))[1]
        pairs["copies, 1,000"].append((t_plain, t_fast))
        labels, t = timed(digit_labels, test)
        costs["classifier"].append(t)
        pairs["classifier"].append((timed(classify_digits, test)[1], t))
        t = timed(check_collapse, test, labels, hist, basis=index)[1]
        costs["collapse"].append(t)
        pairs["collapse"].append((timed(check_collapse, test, labels, hist)[1], t))
        costs["signature"].append(timed(signature, names, list(test))[1])
    total = sum(statistics.median(v) for v in costs.values())
    print(
        "\ncost per 10,000-image submission (s, median): "
        + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in costs.items())
        + f"; total {total:.1f}"
    )
    print("side by side, plain vs fast (s, median of each; ratio: median of per-repeat ratios):")
    for name, runs in pairs.items():
        old, new = (statistics.median(r[i] for r in runs) for i in (0, 1))
        ratio = statistics.median(a / b for a, b in runs)
        print(f"  {name}: {old:.1f} vs {new:.1f} ({ratio:.1f}x)")

    # Class-wide screen: 100 students of 10,000 images.
    real = signature(names, list(test))
    reencoded = signature(names, list(plants.jpeg(test[rng.permutation(len(test))])))
    sigs = {"s000": real, "s001": reencoded}
    for i in range(2, 100):
        sigs[f"s{i:03d}"] = Signature(
            names,
            rng.integers(0, 256, (10000, 32), dtype=np.uint8),
            rng.integers(0, 2**63, 10000, dtype=np.int64).astype(np.uint64),
            real.thumbs,
        )
    pairs, t_screen = timed(shared_pairs, sigs)
    print(
        f"class screen of 100 students x 10,000 images: {t_screen:.1f} s; pairs: "
        + ", ".join(
            f"{p.a}-{p.b} identical {p.identical} pHash {p.phash_matches} verified {p.verified}"
            for p in pairs
        )
    )


if __name__ == "__main__":
    main()
