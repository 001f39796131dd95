"""Run a student's sampler in a sandbox and collect the images it writes.

The contract a sampler sees (CONTRACT.md beside this file): its unpacked source read-only
at /submission, the rubric's command (``{output}`` -> /output, ``{num}``, ``{seed}``) run by
/bin/sh with cwd /submission as an unprivileged user, /output as the only writable folder
besides a small /tmp (both size-capped), no network, an empty environment, and limits on
time, memory, processes and output. Whatever the sampler does, the result is a
``SandboxOutcome``: a ``SandboxRun`` record, Findings under ``sandbox.`` and the folder of
collected regular files; the pipeline then runs the normal image checks on that folder.

Backends: ``docker`` (docker.py, primary; GPUs through device requests) and ``bwrap``
(bwrap.py, for hosts without Docker), chosen in backends.py; ``sandbox_problems`` says,
before grading, why the rubric's sampler cannot run here.
"""

import importlib

# Names are imported on first use: the rubric reads the sample models (spec.py) and must not
# pay for the backends when a student only checks formats.
_HOMES = {
    "audit_against_submitted": "audit",
    "audit_spec": "audit",
    "get_backend": "backends",
    "sandbox_problems": "backends",
    "SandboxError": "interface",
    "SandboxJob": "interface",
    "format_command": "interface",
    "SandboxOutcome": "runner",
    "run_sampler": "runner",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
