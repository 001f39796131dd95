"""The metric columns of the grade CSV and the class table: each metric gives the columns its
kind declares (`MetricKind.columns`), in rubric order, named by the metric's key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grader.metrics.kinds import handler_of
from grader.results import StudentResult


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header: the metric's key, or KEY_PART for a kind's further columns
    title: str  # the class table's header
    metric: str
    position: int  # among the columns of its metric
    digits: int  # decimals in the exports


def metrics_of(results: Iterable[StudentResult], rubric=None) -> list[tuple[str, str, str]]:
    """(name, kind, title) of every metric: the rubric's order when given, then any other
    metric in the records in order of first appearance."""
    found: dict[str, tuple[str, str, str]] = {}
    if rubric is not None:
        for name, spec in rubric.metrics.items():
            found[name] = (name, spec.kind, spec.title or name)
    for result in results:
        for m in result.metrics:
            found.setdefault(m.name, (m.name, m.kind, m.title or m.name))
    return list(found.values())


def metric_columns(metrics: Sequence[tuple[str, str, str]]) -> list[Column]:
    columns = []
    for name, kind, title in metrics:
        handler = handler_of(kind)
        for i, key in enumerate(handler.columns(name)):
            part = key.removeprefix(name).lstrip("_").replace("_", " ")
            columns.append(Column(key, f"{title} ({part})" if part else title, name, i, handler.digits))
    return columns


def column_values(columns: Sequence[Column], result: StudentResult,
                  kinds: dict[str, str]) -> list[float | str | None]:
    """The record's value in each column (None: not computed); `kinds` maps metric -> kind."""
    cache: dict[str, list] = {}
    values = []
    for column in columns:
        if column.metric not in cache:
            cache[column.metric] = handler_of(kinds[column.metric]).column_values(column.metric, result)
        values.append(cache[column.metric][column.position])
    return values
