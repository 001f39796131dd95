"""Errors that are the TA's or the caller's to fix (exit code 2), never a student's.

Student problems are never exceptions: they are Findings (see findings.py).
"""


class GraderError(Exception):
    """A usage or configuration problem: bad rubric, missing stats or weights, bad flag."""

    exit_code = 2


class RubricError(GraderError):
    """The rubric YAML is invalid; the message names each YAML path and bad value."""


class ConfigError(GraderError):
    """The run cannot grade as configured (missing TA files or weights, an unusable device or
    sandbox); found before any student is graded, every problem listed with its fix."""
