"""Hostile: explores the sandbox and reports what it could reach in OUTPUT/probe.json.

Reads its targets (host paths, a loopback port, a token) from probe_config.json in the
submission. Only ever connects to 127.0.0.1.
"""

import json
import os
import socket
import sys
from pathlib import Path

out = Path(sys.argv[1])
config = json.loads(Path("probe_config.json").read_text())
report = {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd()}


def attempt(fn):
    try:
        return "ok", fn()
    except Exception as exc:  # noqa: BLE001 - every failure is a result here
        return type(exc).__name__, None


def connect():
    with socket.create_connection(("127.0.0.1", config["port"]), timeout=2) as s:
        s.sendall(b"hello from the sandbox")
        return True


report["connect_loopback"] = attempt(connect)[0]
report["interfaces"] = [name for _, name in socket.if_nameindex()]
report["docker_socket"] = os.path.exists("/var/run/docker.sock")

reads = {}
for path in ["/etc/shadow", *config["host_files"]]:
    status, data = attempt(lambda p=path: Path(p).read_bytes())
    reads[path] = status if data is None else f"ok:{len(data)}"
report["reads"] = reads
report["host_home_listing"] = attempt(lambda: sorted(os.listdir(config["host_home"])))

found = []
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    found += [os.path.join(root, n) for n in dirs + files if config["token"] in n]
report["token_names_found"] = found
report["env"] = dict(os.environ)

writes = {}
for path in [
    "/submission/pwned.txt",
    "/pwned.txt",
    "/etc/pwned.txt",
    "/usr/pwned.txt",
    config["host_write"],
    "/tmp/ok.txt",
    str(out / "ok.txt"),
]:
    writes[path] = attempt(lambda p=path: Path(p).write_text("written"))[0]
report["writes"] = writes

(out / "probe.json").write_text(json.dumps(report, indent=1))
print(json.dumps(report)[:2000])
