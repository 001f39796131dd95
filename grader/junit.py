"""JUnit XML of graded submissions, the test report CI systems render (GitHub Actions reporters,
GitLab's `artifacts:reports:junit`).

One <testsuite> per student; in it one <testcase> per rubric line of the grade (failed when it
lost points, an error when it could not be computed) and one per error finding (failed, with
the sentence and the fix). A student graded without a grade (`grader check` of some parts)
gets its findings only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader.findings import Severity
from grader.results import GradeLine, StudentResult


def _line_case(suite: ET.Element, sid: str, line: GradeLine) -> str:
    case = ET.SubElement(suite, "testcase", name=line.label, classname=f"{sid}.grade")
    shown = f"{line.points:+g}" + (f" of {line.max_points:g}" if line.max_points is not None else "")
    if line.incomplete:
        ET.SubElement(case, "error", message=f"not computed: {line.detail}", type="incomplete").text = line.detail
        return "error"
    lost = line.points < 0 or (line.max_points is not None and line.points < line.max_points)
    if lost and not line.override:
        ET.SubElement(case, "failure", message=f"{shown}: {line.detail}", type="points").text = line.detail
        return "failure"
    ET.SubElement(case, "system-out").text = f"{shown}: {line.detail}"
    return "pass"


def junit_xml(results: list[StudentResult], suite_name: str = "grader") -> str:
    root = ET.Element("testsuites", name=suite_name)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.student_id)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        for line in r.grade.lines if r.grade else []:
            outcome = _line_case(suite, r.student_id, line)
            counts["tests"] += 1
            counts["failures"] += outcome == "failure"
            counts["errors"] += outcome == "error"
        for f in r.findings:
            if f.severity is not Severity.ERROR:
                continue
            where = f" ({f.artifact})" if f.artifact else ""
            case = ET.SubElement(suite, "testcase", name=f"{f.code}{where}", classname=f"{r.student_id}.findings")
            ET.SubElement(case, "failure", message=f.message, type=f.code).text = f"{f.message}\nHow to fix: {f.fix}"
            counts["tests"] += 1
            counts["failures"] += 1
        if r.traceback:
            case = ET.SubElement(suite, "testcase", name="grading", classname=f"{r.student_id}.grader")
            ET.SubElement(case, "error", message="grading crashed", type="crash").text = r.traceback
            counts["tests"] += 1
            counts["errors"] += 1
        if r.grade is not None:  # the schema puts <properties> before the test cases
            total = "incomplete" if r.grade.final is None else f"{r.grade.final:.2f}"
            properties = ET.Element("properties")
            ET.SubElement(properties, "property", name="grade", value=f"{total} / {r.grade.max_points:g}")
            suite.insert(0, properties)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: list[StudentResult], path, suite_name: str = "grader") -> None:
    from grader import atomic

    atomic.write_text(path, junit_xml(results, suite_name))
