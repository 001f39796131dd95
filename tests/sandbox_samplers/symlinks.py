"""Hostile: leaves symbolic links to host files in its output beside one real image."""

import json
import os
import sys
from pathlib import Path

from PIL import Image

out = Path(sys.argv[1])
config = json.loads(Path("probe_config.json").read_text())
Image.new("RGB", (28, 28), "black").save(out / "00001.png")
os.symlink("/etc/shadow", out / "00002.png")
os.symlink(config["host_files"][0], out / "00003.png")
os.symlink("../../../..", out / "up")
os.mkdir(out / "sub")
os.symlink("/", out / "sub" / "root")
os.mkfifo(out / "pipe")
print("links made")
