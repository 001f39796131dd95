"""Grading a class of many 10,000-image HW3 submissions: first run, a scoring edit
(re-score only), and a check edit (everything re-checked), each as a whole `grader run`.

Targets for 100 students: a scoring edit (re-score only) <= 60 s, an unchanged rerun <= 30 s,
per-student unpack + check (+ store) of a 10,000-image zip <= 3 s (the first run / students).
FID is off here (--no-metrics): its cached path is measured by bench_fid.py. With fewer
--students, the per-student column extrapolates to 100.

    python benchmarks/bench_class.py [--students 100] [--mnist ../shared/data/mnist]
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
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.perf_counter() - start, proc.stdout.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--mnist", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
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
