"""Hostile: prints 1 GB to stdout, then writes one image."""

import sys
from pathlib import Path

from PIL import Image

chunk = b"y" * (2**20 - 1) + b"\n"
for _ in range(1024):
    sys.stdout.buffer.write(chunk)
sys.stdout.flush()
Image.new("RGB", (28, 28), "white").save(Path(sys.argv[1]) / "00001.png")
print("THE END")
