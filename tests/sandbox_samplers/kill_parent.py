"""Hostile: tries to kill PID 1 of its namespace, then its parent, then carries on."""

import os
import signal
import sys
from pathlib import Path

from PIL import Image

out = Path(sys.argv[1])
results = {}
for name, pid in (("pid1", 1), ("parent", os.getppid())):
    if pid <= 0 or pid == os.getpid():
        results[name] = "skipped"
        continue
    try:
        os.kill(pid, signal.SIGKILL)
        results[name] = "sent"
    except OSError as exc:
        results[name] = type(exc).__name__
    # Report each attempt before the next: killing the parent may end this process too.
    print(results, flush=True)
for index in range(1, int(sys.argv[2]) + 1):
    Image.new("RGB", (28, 28), "gray").save(out / f"{index:05d}.png")
print("still alive", flush=True)
