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

from grader.sandbox.audit import audit_against_submitted, audit_spec
from grader.sandbox.backends import get_backend, sandbox_problems
from grader.sandbox.interface import SandboxError, SandboxJob, format_command
from grader.sandbox.runner import SandboxOutcome, run_sampler

__all__ = [
    "SandboxError",
    "SandboxJob",
    "SandboxOutcome",
    "audit_against_submitted",
    "audit_spec",
    "format_command",
    "get_backend",
    "run_sampler",
    "sandbox_problems",
]
