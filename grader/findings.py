"""How every check speaks: a Finding with a stable code, a severity and a sentence.

Codes are stable identifiers (``images.count``, ``zip.path_traversal``) that rubrics use
for deductions and severity overrides; each is catalogued in codes.py, and a Finding with
a code missing there is refused.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from enum import Enum

from pydantic import BaseModel, ConfigDict, field_validator

from grader import codes


class Severity(str, Enum):
    ERROR = "error"  # the submission does not meet the rules: exit 1, may cost points
    WARNING = "warning"  # worth knowing, not a failure (e.g. small-N FID bias)
    INFO = "info"  # context only (e.g. an artifact not given to `grader check`)

    @property
    def fails(self) -> bool:
        return self is Severity.ERROR


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity = Severity.ERROR
    message: str
    artifact: str | None = None
    path: str | None = None
    hint: str | None = None  # how to fix it, in the student's terms

    @field_validator("code")
    @classmethod
    def _catalogued(cls, code: str) -> str:
        code = codes.canonical(code)
        codes.lookup(code)  # KeyError for an uncatalogued code: a bug to fix, not a finding
        return code

    @property
    def explanation(self) -> str:
        return codes.lookup(self.code).explanation

    @property
    def fix(self) -> str:
        """This finding's own hint, else the catalogue's."""
        return self.hint or codes.lookup(self.code).hint


def error(code: str, message: str, **kw) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, message=message, **kw)


def warning(code: str, message: str, **kw) -> Finding:
    return Finding(code=code, severity=Severity.WARNING, message=message, **kw)


def info(code: str, message: str, **kw) -> Finding:
    return Finding(code=code, severity=Severity.INFO, message=message, **kw)


def has_failures(findings: Iterable[Finding]) -> bool:
    return any(f.severity.fails for f in findings)


def apply_severity_overrides(
    findings: Iterable[Finding], overrides: Mapping[str, Severity]
) -> list[Finding]:
    """Re-grade findings by the rubric's ``severity:`` map (code globs, most specific first)."""
    patterns = sorted(overrides, key=lambda p: (p.count("*"), -len(p)))
    result = []
    for f in findings:
        for pattern in patterns:
            if fnmatch.fnmatchcase(f.code, pattern):
                f = f.model_copy(update={"severity": overrides[pattern]})
                break
        result.append(f)
    return result


def compact_list(items: Iterable[str], first: int = 5) -> str:
    """'a, b, c, d, e and 12 more' — keeps messages readable for 10,000-item lists."""
    items = list(items)
    if len(items) <= first:
        return ", ".join(items)
    return f"{', '.join(items[:first])} and {len(items) - first:,} more"


def runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted runs of consecutive integers: [1,2,3,7,9,10] -> [(1,3), (7,7), (9,10)]."""
    nums = sorted(set(numbers))
    spans: list[tuple[int, int]] = []
    for n in nums:
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    return spans


def compact_ranges(numbers: Iterable[int], fmt: str = "{}", first: int = 5) -> str:
    """Collapse sorted integers into ranges: [1,2,3,7,9,10] -> '1-3, 7, 9-10'."""
    spans = [fmt.format(a) if a == b else f"{fmt.format(a)}-{fmt.format(b)}" for a, b in runs(numbers)]
    return compact_list(spans, first)
