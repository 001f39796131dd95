"""The rubric's optional `platforms:` section: what the platform autograders show, and when.

```yaml
platforms:
  gradescope:
    visibility: visible            # every test's, unless `lines` says otherwise
    lines: {fid: after_published}  # per rubric line: a band's metric, a deduction's code, base, late
    leaderboard: [fid]             # metrics on the assignment's leaderboard
  prairielearn:
    timeout_s: 600
```

Nothing here changes a check or a point: editing it neither regrades nor re-scores.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.schema import Strict

# Gradescope's values (results.json `visibility`).
Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
BASE_LINE, LATE_LINE = "base", "late"


class GradescopeOptions(Strict):
    visibility: Visibility = "visible"
    lines: dict[str, Visibility] = Field(default_factory=dict)
    leaderboard: list[str] = Field(default_factory=list)
    stdout_visibility: Visibility = "hidden"  # the grader's log: for the teaching team


class PrairieLearnOptions(Strict):
    timeout_s: int = Field(600, gt=0, le=600)  # PrairieLearn allows at most 600 s
    image: str = "grader-prairielearn:latest"  # the image the question's recipe builds


class Platforms(Strict):
    gradescope: GradescopeOptions = Field(default_factory=GradescopeOptions)
    prairielearn: PrairieLearnOptions = Field(default_factory=PrairieLearnOptions)

    def problems(self, rubric) -> list[str]:
        """References to lines and metrics the rubric does not have, with their YAML path."""
        lines = {b.metric for b in rubric.scoring.bands} | {d.code for d in rubric.scoring.deductions}
        lines |= {BASE_LINE} | ({LATE_LINE} if rubric.late is not None else set())
        problems = [
            f"platforms.gradescope.lines.{key}: not a rubric line (one of: {', '.join(sorted(lines))})"
            for key in self.gradescope.lines if key not in lines
        ]
        problems += [
            f"platforms.gradescope.leaderboard.{i}: unknown metric {name!r}"
            for i, name in enumerate(self.gradescope.leaderboard) if name not in rubric.metrics
        ]
        return problems
