"""Time check_image_set on a full homework set: N distinct RGB PNGs saved by Pillow.

    python benchmarks/bench_images_check.py [--count 10000] [--size 28] [--repeat 3]

Prints wall time (best and median of the repeats, files in the page cache), the time per
image, the CPU time (a fairer number on a shared machine), the process's peak RSS, and the peak
of Python allocations during one check (tracemalloc; a separate, untimed run), which shows what
the check keeps per file.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from grader.checks.images import check_image_set
from grader.rubric import ImageSetArtifact


def write_set(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(1, count + 1):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    spec = ImageSetArtifact(
        kind="image_set",
        count=args.count,
        names="{index:05d}.png",
        size=(args.size, args.size),
        modes=["RGB"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_set(folder, args.count, args.size)
        print(
            f"wrote {args.count:,} {args.size}x{args.size} RGB PNGs in "
            f"{time.perf_counter() - start:.1f} s"
        )
        rss_before = peak_rss_mb()

        walls, cpus = [], []
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            report = check_image_set(folder, spec)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            assert report.findings == [] and report.count == args.count, report.findings

        tracemalloc.start()
        check_image_set(folder, spec)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    best, median = min(walls), statistics.median(walls)
    print(
        f"check_image_set: best {best:.3f} s, median {median:.3f} s of {args.repeat} "
        f"({best / args.count * 1e6:.0f} us/image)"
    )
    print(f"CPU time (user+sys, less affected by other load): best {min(cpus):.3f} s")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (before checking: {rss_before:.0f} MB)")
    print(
        f"Python allocations, peak during one check: {traced_peak / 1024**2:.1f} MB "
        f"({traced_peak / args.count:.0f} B/image)"
    )


if __name__ == "__main__":
    main()
