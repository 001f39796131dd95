"""`grader check` of a valid 10,000-image HW3 submission, format only, as a whole process.

Target (issue): <= 3 s wall on a 2-core machine, peak memory <= 300 MB.

    python benchmarks/bench_check.py [--mnist ../shared/data/mnist] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "A0000001"
        cmd = [sys.executable, "-m", "grader", "example", "hw3", str(sub), "--images", str(args.images)]
        subprocess.run(cmd + (["--mnist", str(args.mnist)] if args.mnist else []), check=True, capture_output=True)
        # /usr/bin/time reports this process's own peak RSS (getrusage would mix in the example writer).
        check = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "grader", "check", str(sub),
                 "--rubric", str(ROOT / "rubrics" / "hw3.yaml"), "--no-metrics", "--json"]
        walls, peaks = [], []
        for _ in range(args.repeat + 1):  # the first run warms the page cache and is not counted
            start = time.perf_counter()
            proc = subprocess.run(check, capture_output=True, text=True, check=False)
            walls.append(time.perf_counter() - start)
            peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        walls = walls[1:]
    print(f"grader check, {args.images:,} images, format only, {args.repeat} runs")
    print(f"  wall s: min {min(walls):.2f}  median {statistics.median(walls):.2f}  max {max(walls):.2f}")
    print(f"  peak RSS of the largest process: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
