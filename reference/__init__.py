"""Reference models for the courses the grader serves: a DDPM and a DCGAN that produce
baseline submissions, and a small MNIST digit classifier used by grid and coverage checks.

Run ``python -m reference --help`` for the train/sample/eval commands.
"""

from __future__ import annotations

from reference.classifier import classify_digits, load_digit_classifier

__all__ = ["classify_digits", "load_digit_classifier"]
