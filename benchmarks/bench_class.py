"""Grading a class of many 10,000-image HW3 submissions: first run, a scoring edit
(re-score only), and a check edit (everything re-checked), each as a whole `grader run`.

Targets for 100 students: a scoring edit (re-score only) <= 60 s, an unchanged rerun <= 30 s,
per-student unpack + check (+ store) of a 10,000-image zip <= 3 s (the first run / students).
FID is off here (--no-metrics): its cached path is measured by bench_fid.py. With fewer
--students, the per-student column extrapolates to 100.

    python benchmarks/bench_class.py [--students 100] [--mnist ../shared/data/mnist]
        [--ta-files] [--keep DIR]

--ta-files puts the TA files the shipped rubric names beside it, as a course has them:
`mnist.npz` (2048-dimension statistics, 33 MB; synthetic numbers, FID is off) and `mnist/`
(the --mnist folder). They are part of every student's grading key, so a run hashes them.
--keep DIR builds the class in DIR and leaves it there (submissions/, rubric.yaml,
results/), to time single commands on it with farm-bench.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def timed_run(subs: Path, rubric: Path, out: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader", "run", str(subs), "--rubric", str(rubric), "--out",
                           str(out), "--no-metrics", "-q"], capture_output=True, text=True, check=False)
    # 3: grades incomplete, as they are with FID off once the rubric's statistics are there
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.perf_counter() - start, proc.stdout.strip().splitlines()[0]


def write_ta_files(folder: Path, mnist: Path) -> None:
    import numpy as np

    from grader.metrics import save_stats

    rng = np.random.default_rng(0)
    root = rng.standard_normal((2048, 2048)) / 45
    save_stats(folder / "mnist.npz", rng.standard_normal(2048), root @ root.T)
    (folder / "mnist").symlink_to(mnist, target_is_directory=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--mnist", type=Path, default=None)
    parser.add_argument("--ta-files", action="store_true", help="mnist.npz and mnist/ beside the rubric")
    parser.add_argument("--keep", type=Path, default=None, help="build the class here and keep it")
    args = parser.parse_args()
    if args.ta_files and args.mnist is None:
        parser.error("--ta-files needs --mnist (the training digits the integrity metric reads)")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: not empty; give a new or empty folder")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch) if args.keep is None else args.keep.resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        one = tmp / "one"
        cmd = [sys.executable, "-m", "grader", "example", "hw3", str(one)]
        subprocess.run(cmd + (["--mnist", str(args.mnist)] if args.mnist else []), check=True, capture_output=True)
        subs = tmp / "submissions"
        for i in range(args.students):
            sid = f"B{i:07d}"
            (subs / sid).mkdir(parents=True)
            for f in one.iterdir():
                shutil.copyfile(f, subs / sid / f.name.replace("A0000001", sid))
        data = yaml.safe_load((ROOT / "rubrics" / "hw3.yaml").read_text())
        data.pop("late", None)  # the course's hard deadline would zero every grade after it passes
        rubric = tmp / "rubric.yaml"
        rubric.write_text(yaml.safe_dump(data))
        if args.ta_files:
            write_ta_files(tmp, args.mnist.resolve())
        out = tmp / "results"
        rows = []
        wall, line = timed_run(subs, rubric, out)
        rows.append(("first run", wall, line))
        data["scoring"]["deductions"][1]["points"] = 7
        rubric.write_text(yaml.safe_dump(data))
        wall, line = timed_run(subs, rubric, out)
        rows.append(("scoring edit (re-score)", wall, line))
        data["artifacts"]["images"]["allow_duplicates"] = True
        rubric.write_text(yaml.safe_dump(data))
        wall, line = timed_run(subs, rubric, out)
        rows.append(("check edit (re-check all)", wall, line))
        wall, line = timed_run(subs, rubric, out)
        rows.append(("unchanged rerun", wall, line))
    print(f"{args.students} students x 10,000 images (format checks, no FID)")
    for label, wall, line in rows:
        print(f"  {label:28s} {wall:7.1f} s  ({wall / args.students:.2f} s/student, "
              f"~{100 * wall / args.students:.0f} s for 100)  {line}")


if __name__ == "__main__":
    main()
