"""What KID and precision/recall add to a rubric that already has FID, and the mode-collapse case
at full size.

    nice python benchmarks/bench_feature_metrics.py cost [--n 1024 10000] [--reference 10000]
    nice python benchmarks/bench_feature_metrics.py collapse [--distinct 64] [--n 1024]

cost: a set of N images whose Inception features are already in the feature cache (FID
computed them; the timed part counts forward passes and fails if there is one), then, timed
separately, each kind's measure through the grader's own code: FID (reads the cache, Fréchet
distance), KID (reads the cache again, 100 subsets) and precision/recall (reads the cache
again, k = 3). The extra seconds of adding KID and precision/recall are the last two. The
features are planted in the cache from a Gaussian fitted to nothing in particular (random,
seeded): the cost of these metrics does not depend on the values, and 10,000 real Inception
passes would take 17 minutes here.

collapse: `--distinct` real CelebA faces each repeated to N images, against N other real faces
(real Inception features, computed once and cached): precision stays high, recall falls.
Work files go to benchmarks/out/feature_metrics (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "benchmarks" / "out" / "feature_metrics"
RUBRIC = """
name: feature metrics benchmark
artifacts: {{images: {{kind: image_set}}}}
metrics:
  fid: {{kind: fid, artifact: images, backend: pytorch-fid, stats: {ref}}}
  kid: {{kind: kid, artifact: images, backend: pytorch-fid, reference: {ref}}}
  pr: {{kind: precision_recall, artifact: images, backend: pytorch-fid, reference: {ref}}}
"""


def context(reference: Path, work: Path):
    from grader.pipeline import GradingContext
    from grader.rubric import parse_rubric

    rubric = parse_rubric(RUBRIC.format(ref=reference.name), path=reference.parent / "rubric.yaml")
    return GradingContext(rubric=rubric, work_root=work, device="cpu",
                          weights=SHARED / "inception" / "fid_inception_v3.pth",
                          cache_dir=OUT / "cache")


def write_digits(folder: Path, n: int) -> list[Path]:
    from grader.datasets import load_mnist

    folder.mkdir(parents=True, exist_ok=True)
    digits, _ = load_mnist(SHARED / "mnist", "test")
    paths = []
    for i in range(n):
        path = folder / f"{i + 1:05d}.png"
        if not path.exists():
            Image.fromarray(digits[i % len(digits)]).convert("RGB").save(path)
        paths.append(path)
    return paths


def cost(sizes: list[int], reference_n: int) -> None:
    from grader.image_files import content_digest, sort_key
    from grader.metrics import FidEngine
    from grader.metrics.cache import FeatureCache, feature_key
    from grader.metrics.frechet import feature_statistics, save_stats
    from grader.metrics.kinds import KINDS, MetricInputs

    rng = np.random.default_rng(0)
    reference = OUT / f"reference{reference_n}.npz"
    if not reference.exists():
        rows = rng.normal(0.3, 0.4, (reference_n, 2048)).clip(0).astype(np.float32)
        save_stats(reference, *feature_statistics(rows.astype(np.float64)), features=rows)
    ctx = context(reference, OUT / "work")
    engine: FidEngine = ctx.engine("pytorch-fid")
    for n in sizes:
        images = sorted(write_digits(OUT / f"set{n}", n), key=sort_key)
        key = feature_key(content_digest(images), engine.weights_sha256, engine.backend.name,
                          engine.model_variant)
        planted = rng.normal(0.3, 0.4, (n, 2048)).clip(0).astype(np.float32).astype(np.float64)
        FeatureCache(OUT / "cache").store(key, planted, {"device": "cpu", "planted": True})
        inputs = MetricInputs("bench", {"images": images}, {}, {})
        for name in ("fid", "kid", "pr"):
            spec = ctx.rubric.metrics[name]
            start = time.perf_counter()
            cpu = time.process_time()
            result = KINDS[spec.kind].measure(name, spec, inputs, ctx).result
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert result.provenance["feature_cache"] == "hit", "an Inception pass ran"
            print(f"N={n:>6,}  {name:<4} {wall:7.2f} s wall {cpu:7.2f} s CPU  value {result.value:.6g}  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    assert not engine.model_loaded, "the Inception network was loaded: features were not cached"


def collapse(distinct: int, n: int) -> None:
    from grader.datasets import load_image_zip
    from grader.metrics.frechet import save_stats
    from grader.metrics.kinds.precision_recall import precision_recall

    faces = load_image_zip(SHARED / "faces" / "celeba_first10k_89x109.zip", limit=n + distinct, size=64)
    real_dir, few_dir = OUT / f"faces_real{n}", OUT / f"faces_distinct{distinct}"
    for folder, images in ((real_dir, faces[:n]), (few_dir, faces[n:])):
        folder.mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(images):
            if not (folder / f"{i:05d}.png").exists():
                Image.fromarray(a).save(folder / f"{i:05d}.png")
    reference = OUT / "unused.npz"
    save_stats(reference, np.zeros(2048), np.eye(2048))
    engine = context(reference, OUT / "work").engine("pytorch-fid")
    start = time.perf_counter()
    real, _ = engine.set_features(sorted(real_dir.glob("*.png")))
    few, _ = engine.set_features(sorted(few_dir.glob("*.png")))
    print(f"features of {n + distinct:,} faces: {time.perf_counter() - start:.0f} s")
    half = n // 2
    honest = precision_recall(real[:half], real[half:])
    collapsed = precision_recall(np.repeat(few, half // distinct, axis=0), real[half:])
    print(f"{half:,} real faces vs {half:,} other real faces: precision {honest[0]:.3f} recall {honest[1]:.3f}")
    print(f"{distinct} faces repeated to {half:,} vs {half:,} real faces: precision {collapsed[0]:.3f} "
          f"recall {collapsed[1]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--n", type=int, nargs="+", default=[1024, 10000])
    c.add_argument("--reference", type=int, default=10000)
    m = sub.add_parser("collapse")
    m.add_argument("--distinct", type=int, default=64)
    m.add_argument("--n", type=int, default=2048, help="real faces; half of them are the reference")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "cost":
        cost(args.n, args.reference)
    else:
        collapse(args.distinct, args.n)


if __name__ == "__main__":
    main()
