"""Time and memory of unpack_zip on a realistic HW3 images zip and on one large entry.

    python benchmarks/bench_unpack.py [--images 10000] [--big-mib 256] [--repeat 3]

Builds, in a temporary folder, a zip of N 28x28 RGB PNGs (deflated, as zip tools and
macOS/Windows do) and a zip holding one large deflated entry. Each measurement runs in a
fresh child process so that its peak RSS is its own: wall and CPU time of unpack_zip, peak
RSS growth during the call, and (in a separate run) tracemalloc's peak of Python
allocations. For comparison: zipfile.ZipFile.extractall on the same zip, and the file-system
floor (creating and writing the same files from memory with os.open/os.write), which on a
slow or sandboxed disk is most of the cost.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_images_zip(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(1, n + 1):
            # A blurry blob on black, roughly MNIST-like in size and compressibility.
            img = np.zeros((28, 28, 3), np.uint8)
            y, x = rng.integers(6, 22, 2)
            img[y - 5:y + 5, x - 3:x + 3] = rng.integers(100, 256, (10, 6, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img, "RGB").save(buf, "PNG")
            zf.writestr(f"{i:05d}.png", buf.getvalue())


def build_big_zip(path: Path, mib: int) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB, compresses about 250:1 under deflate
    info = zipfile.ZipInfo("big.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w", force_zip64=True) as out:
        for _ in range(mib):
            out.write(block)


def measure(zip_path: Path, mode: str, limits_json: str) -> dict:
    """Runs in the child: one unpack (or extractall) into a fresh folder."""
    from grader.intake.unpack import unpack_zip
    from grader.rubric import UnpackLimits

    limits = UnpackLimits(**json.loads(limits_json))
    with tempfile.TemporaryDirectory(dir=zip_path.parent) as tmp:
        dest = Path(tmp) / "out"
        if mode == "tracemalloc":
            tracemalloc.start()
            result = unpack_zip(zip_path, dest, limits)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return {"tracemalloc_peak_mib": peak / 2**20, "files": len(result.files)}
        if mode == "floor":
            with zipfile.ZipFile(zip_path) as zf:
                content = [(i.filename, zf.read(i)) for i in zf.infolist()]
            dest.mkdir()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if mode == "floor":
            for name, data in content:
                fd = os.open(dest / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                os.close(fd)
            files = len(content)
        elif mode == "extractall":
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(dest)
            files = sum(1 for p in dest.rglob("*") if p.is_file())
        else:
            files = len(unpack_zip(zip_path, dest, limits).files)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"wall_s": wall, "cpu_s": cpu, "rss_growth_mib": (rss1 - rss0) / 1024,
                "files": files}


def child(zip_path: Path, mode: str, limits: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(zip_path), mode, json.dumps(limits)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to build and extract (e.g. /dev/shm to leave disk speed out)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        images = Path(tmp) / "images.zip"
        t = time.perf_counter()
        build_images_zip(images, args.images)
        print(f"built {args.images:,} PNGs zip: {images.stat().st_size / 2**20:.1f} MiB "
              f"in {time.perf_counter() - t:.1f} s")
        for mode in ("unpack", "extractall", "floor"):
            runs = [child(images, mode, {}) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall_s"])
            walls = ", ".join(f"{r['wall_s']:.3f}" for r in runs)
            print(f"{mode:>10} {best['files']:,} files: wall {best['wall_s']:.3f} s, "
                  f"cpu {best['cpu_s']:.3f} s (best of {args.repeat}; all wall: {walls}), "
                  f"peak RSS growth {best['rss_growth_mib']:.1f} MiB")
        print(f"{'unpack':>10} tracemalloc peak "
              f"{child(images, 'tracemalloc', {})['tracemalloc_peak_mib']:.2f} MiB")

        big = Path(tmp) / "big.zip"
        build_big_zip(big, args.big_mib)
        limits = {"max_ratio": 1000.0}  # the test entry compresses ~250:1, above the default
        r = child(big, "unpack", limits)
        m = child(big, "tracemalloc", limits)
        print(f"one {args.big_mib} MiB entry ({big.stat().st_size / 2**20:.1f} MiB zipped): "
              f"wall {r['wall_s']:.2f} s, cpu {r['cpu_s']:.2f} s, peak RSS growth "
              f"{r['rss_growth_mib']:.1f} MiB, tracemalloc peak {m['tracemalloc_peak_mib']:.2f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(measure(Path(sys.argv[2]), sys.argv[3], sys.argv[4])))
    else:
        main()
