"""Which sandbox backend runs: by name or the best one usable here, checked before grading."""

from __future__ import annotations

from grader.sandbox.interface import Backend, SandboxError
from grader.sandbox.spec import SampleSpec


def _backend_classes() -> dict[str, type[Backend]]:
    from grader.sandbox.bwrap import BwrapBackend
    from grader.sandbox.docker import DockerBackend

    return {"docker": DockerBackend, "bwrap": BwrapBackend}  # order: preference for "auto"


def get_backend(name: str = "auto") -> Backend:
    classes = _backend_classes()
    if name == "auto":
        reasons = []
        for cls in classes.values():
            backend = cls()
            reason = backend.unavailable_reason()
            if reason is None:
                return backend
            reasons.append(f"{cls.name}: {reason}")
        raise SandboxError("no sandbox backend can run here (" + "; ".join(reasons) + ")")
    if name not in classes:
        raise SandboxError(f"unknown sandbox backend {name!r}; choose from {', '.join(classes)}")
    backend = classes[name]()
    reason = backend.unavailable_reason()
    if reason is not None:
        raise SandboxError(f"sandbox backend {name!r} cannot run here: {reason}")
    return backend


def sandbox_problems(spec: SampleSpec, backend: str | None = None) -> list[str]:
    """Why the rubric's sampler cannot run here (no usable backend, image not built), one
    sentence each; checked once before any student is graded."""
    instead = " (or pass --no-sandbox to grade the uploaded images)"
    try:
        chosen = get_backend(backend or spec.backend)
    except SandboxError as exc:
        return [f"sample: {exc}{instead}"]
    problem = chosen.image_problem(spec.image)
    return [f"sample: {problem}{instead}"] if problem else []
