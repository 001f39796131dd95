"""Hostile: starts detached background processes, then writes its images and exits 0.

One sleeps in a new session, one double-forks and keeps writing into the output folder,
one keeps the sampler's stdout open. None may outlive the run.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

out, num, token = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[4]
subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)", token],
    start_new_session=True,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
holder = "import time; print('holding stdout', flush=True); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", holder, token])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        n = 0
        while True:
            (out / f"late-{n}.txt").write_text("still here")
            n += 1
            time.sleep(0.05)
    os._exit(0)
for index in range(1, num + 1):
    Image.new("RGB", (28, 28), "red").save(out / f"{index:05d}.png")
print("main process done", flush=True)
