"""Overhead per student task of `--executor slurm` versus the local executor, side by side.

The same example class (--no-metrics, so the work is unpack + checks + store and the
difference is the executor's) is graded alternately by `grader run` (local, -j CPUs) and
`grader run --executor slurm` (one array, CPUs tasks at once) on the cluster SLURM_CONF points
at (e.g. the one-node cluster of .ci/slurm-setup.sh). Reports wall times, and the overhead
per task: (slurm wall - local wall) x concurrency / students, plus the mean time the tasks
spent grading inside Slurm (from OUT/slurm/tasks.json) to show where the rest goes
(sbatch, scheduling, a fresh Python with torch per task, sacct polling).

    SLURM_CONF=/tmp/grader-slurm/slurm.conf python benchmarks/bench_executor.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grader_run(cls: Path, out: Path, *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "run",
            str(cls / "submissions"),
            "--rubric",
            str(cls / "rubric.yaml"),
            "--out",
            str(out),
            "--no-metrics",
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100, help="images per student")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        dir=Path.cwd()
    ) as tmp:  # job folders must be visible to the nodes
        tmp = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grader",
                "example",
                "class",
                str(tmp / "cls"),
                "--images",
                str(args.images),
                "--rubric",
                str(ROOT / "rubrics" / "hw3.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        students = len(list((tmp / "cls" / "submissions").iterdir()))
        local, slurm, inside = [], [], []
        for _ in range(args.repeats):
            local.append(grader_run(tmp / "cls", tmp / "local", "-j", str(args.concurrency)))
            slurm.append(
                grader_run(
                    tmp / "cls",
                    tmp / "slurm",
                    "--executor",
                    "slurm",
                    "--max-concurrent",
                    str(args.concurrency),
                )
            )
            tasks = json.loads((tmp / "slurm" / "slurm" / "tasks.json").read_text())["tasks"]
            inside.append(statistics.mean(t["seconds"] for t in tasks.values()))
    lw, sw, iw = statistics.median(local), statistics.median(slurm), statistics.median(inside)
    print(
        f"{students} students x {args.images} images, {args.concurrency} at a time, "
        f"median of {args.repeats} alternating runs"
    )
    print(
        f"  local  -j {args.concurrency}:            {lw:6.2f} s wall  ({lw / students:.2f} s/student)"
    )
    print(
        f"  slurm --max-concurrent {args.concurrency}: {sw:6.2f} s wall  ({sw / students:.2f} s/student)"
    )
    print(
        f"  overhead per task: {(sw - lw) * args.concurrency / students:.2f} s "
        f"(grading inside a task: {iw:.2f} s mean)"
    )
    print(f"  ratio slurm/local wall: {sw / lw:.1f}x")


if __name__ == "__main__":
    main()
