"""A well-behaved sampler: NUM 28x28 RGB PNGs named {index:05d}.png in OUTPUT.

Image i depends only on (seed, i), as the sandbox contract asks, and on the "weights"
(weights/model.txt, an integer offset) shipped inside the submission.
usage: python3 good.py OUTPUT NUM SEED [TOKEN]
"""

import random
import sys
from pathlib import Path

from PIL import Image

out, num, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
weights = Path("weights/model.txt")
offset = int(weights.read_text()) if weights.exists() else 0
for index in range(1, num + 1):
    rng = random.Random(seed * 1_000_003 + index)
    pixels = [tuple((rng.randrange(256) + offset) % 256 for _ in range(3)) for _ in range(28 * 28)]
    image = Image.new("RGB", (28, 28))
    image.putdata(pixels)
    image.save(out / f"{index:05d}.png")
print(f"wrote {num} images to {out}")
