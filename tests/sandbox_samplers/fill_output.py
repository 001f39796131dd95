"""Hostile: writes 1 MB chunks into the output folder until the disk says no."""

import sys
from pathlib import Path

out = Path(sys.argv[1])
written = 0
try:
    with open(out / "big.bin", "wb") as fh:
        while True:
            fh.write(b"\0" * 2**20)
            fh.flush()
            written += 1
except OSError as exc:
    print(f"stopped after {written} MB: {exc}")
    sys.exit(1)
