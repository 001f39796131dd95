"""Hostile: tries to write 100,000 tiny files into the output folder."""

import sys
from pathlib import Path

out = Path(sys.argv[1])
count = 0
try:
    for count in range(100_000):
        (out / f"{count:06d}.png").write_bytes(b"x")
except OSError as exc:
    print(f"stopped after {count} files: {exc}")
    sys.exit(1)
