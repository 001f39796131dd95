"""The grader's console entry point in a child process, as a user runs it (no tests here)."""

from __future__ import annotations

import subprocess
import sys


def grader(*args, env: dict | None = None, check: int | tuple[int, ...] | None = 0,
           **kw) -> subprocess.CompletedProcess:
    """`python -m grader ARGS`; `check`: the exit code(s) it must end with (None: any)."""
    res = subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                         env=env, check=False, **kw)
    if check is not None:
        assert res.returncode in ((check,) if isinstance(check, int) else check), res.stdout + res.stderr
    return res
