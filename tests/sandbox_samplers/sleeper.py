"""Hostile: sleeps far past any timeout."""

import time

print("going to sleep", flush=True)
time.sleep(3600)
