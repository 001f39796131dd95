"""The report pages in a real headless Chromium: sorting, filtering, images, inert input.

Needs Playwright's Python package (no browser download: it drives the system Chromium).
Skipped, with the reason, only when Chromium cannot be started.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import report_samples as samples

from grader.report import render_all, render_student_page

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def sample(tmp_path_factory, mnist_test) -> samples.SampleClass:
    base = tmp_path_factory.mktemp("browser-report")
    sample = samples.build_class(base / "results", mnist_test[0][:400], base / "work")
    render_all(sample.results, sample.run, sample.out_dir)
    return sample


@dataclass
class Problems:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)  # anything but file: and data: URLs

    def assert_none(self) -> None:
        assert self == Problems(), self


@contextmanager
def open_page(browser, path: Path, *, javascript: bool = True) -> Iterator[tuple]:
    context = browser.new_context(java_script_enabled=javascript,
                                  viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems = Problems()
    page.on("console", lambda m: m.type == "error" and problems.console_errors.append(m.text))
    page.on("pageerror", lambda e: problems.page_errors.append(str(e)))
    page.on("dialog", lambda d: (problems.dialogs.append(d.message), d.dismiss()))
    page.on("requestfailed", lambda r: problems.failed.append(r.url))
    page.on("request", lambda r: r.url.startswith(("file:", "data:"))
            or problems.network.append(r.url))
    try:
        page.goto(path.as_uri(), wait_until="load")
        yield page, problems
    finally:
        context.close()


def visible_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#students tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.id)"
    )


def image_widths(page) -> list[int]:
    return page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")


def assert_results_folder_works(browser, out_dir: Path, shots: Path) -> int:
    """Any results folder: the class page sorts by grade and links to student pages that
    load every image without a console error. Returns the number of student pages."""
    with open_page(browser, out_dir / "index.html") as (page, problems):
        page.screenshot(path=shots / "class.png", full_page=True)
        hrefs = page.eval_on_selector_all("#students tbody a", "as => as.map(a => a.href)")
        page.click("#grade-header")
        column = page.eval_on_selector("#grade-header", "th => th.cellIndex")
        grades = page.eval_on_selector_all(
            "#students tbody tr", f"rows => rows.map(r => r.cells[{column}].dataset.value)")
        numbers = [float(g) for g in grades if g]
        assert numbers == sorted(numbers) and grades == [g for g in grades if g] + [""] * (
            len(grades) - len(numbers))
    problems.assert_none()
    assert len(hrefs) == len(list((out_dir / "students").glob("*/index.html")))
    for i, href in enumerate(hrefs):
        with open_page(browser, Path(page_path(href))) as (student, problems):
            student.screenshot(path=shots / f"student-{i}.png", full_page=True)
            widths = image_widths(student)
            assert all(w > 0 for w in widths), (href, widths)
        problems.assert_none()
    return len(hrefs)


def page_path(file_url: str) -> str:
    return unquote(urlparse(file_url).path)


def test_sample_results_folder_works(browser, sample, tmp_path):
    assert assert_results_folder_works(browser, sample.out_dir, tmp_path) == len(sample.results)


def test_pages_of_a_graded_example_class_work(browser, mnist_dir, tmp_path):
    """The real pipeline end to end (format checks only, no FID) on the example class."""
    from click.testing import CliRunner

    from grader.cli import main
    from grader.examples import CLASS

    runner, example, out = CliRunner(), tmp_path / "example", tmp_path / "results"
    made = runner.invoke(main, ["example", "class", str(example), "--images", "64",
                                "--mnist", str(mnist_dir),
                                "--rubric", str(ROOT / "rubrics" / "hw3.yaml")])
    assert made.exit_code == 0, made.output
    graded = runner.invoke(main, ["run", str(example / "submissions"), "--rubric",
                                  str(example / "rubric.yaml"), "--times",
                                  str(example / "times.csv"), "--no-metrics", "--out", str(out),
                                  "--quiet"])
    # Without metrics the FID band is missing: grades are incomplete (exit 3), never 0.
    assert graded.exit_code == 3 and "incomplete: A0000001" in graded.output, graded.output
    (tmp_path / "shots").mkdir()
    assert assert_results_folder_works(browser, out, tmp_path / "shots") == len(CLASS)


def test_class_page_sorts_and_filters_without_errors(browser, sample, tmp_path):
    results = sample.results
    by_id = sorted(r.student_id for r in results)
    graded = sorted((r for r in results if r.grade), key=lambda r: r.grade.final)
    ungraded = [r.student_id for r in sorted(results, key=lambda r: r.student_id) if not r.grade]

    with open_page(browser, sample.out_dir / "index.html") as (page, problems):
        page.screenshot(path=tmp_path / "class.png", full_page=True)
        assert visible_ids(page) == by_id
        assert page.is_visible("#table-controls")
        assert page.locator("#distributions svg rect.bar").count() > 0

        page.click("#grade-header")
        assert visible_ids(page) == [r.student_id for r in graded] + ungraded
        assert page.get_attribute("#grade-header", "aria-sort") == "ascending"
        page.click("#grade-header")
        assert visible_ids(page)[0] == graded[-1].student_id == samples.PERFECT
        assert visible_ids(page) == [r.student_id for r in reversed(graded)] + ungraded
        page.screenshot(path=tmp_path / "class-sorted.png", full_page=True)

        page.fill("#filter-text", samples.LATE)
        assert visible_ids(page) == [samples.LATE]
        assert page.inner_text("#shown-count") == f"1 of {len(results)} students shown"
        page.fill("#filter-text", "images.count")
        expected = {r.student_id for r in results if any(f.code == "images.count"
                                                         for f in r.findings)}
        assert set(visible_ids(page)) == expected == {samples.FINDINGS, samples.NO_FID}
        page.fill("#filter-text", "incomplete")  # the crashed student has no grade at all
        assert visible_ids(page) == [samples.CRASHED]
        page.fill("#filter-text", "")
        page.select_option("#filter-status", "error")
        assert visible_ids(page) == [samples.CRASHED]
        page.select_option("#filter-status", "problems")
        assert set(visible_ids(page)) == {r.student_id for r in results if r.status == "problems"}
        page.select_option("#filter-status", "incomplete")
        assert set(visible_ids(page)) == {r.student_id for r in results
                                          if r.grade_status == "incomplete"} != set()
        page.select_option("#filter-status", "")
        page.screenshot(path=tmp_path / "class-filtered.png", full_page=True)

        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert all(w > 0 for w in image_widths(page))
        # The hostile id is shown as text, exactly as given.
        assert samples.HOSTILE in page.inner_text("#students")
    problems.assert_none()


def test_class_table_is_complete_without_javascript(browser, sample, tmp_path):
    with open_page(browser, sample.out_dir / "index.html", javascript=False) as (page, problems):
        page.screenshot(path=tmp_path / "class-nojs.png", full_page=True)
        assert not page.is_visible("#table-controls")
        assert len(visible_ids(page)) == len(sample.results)
        text = page.inner_text("#students")
        for r in sample.results:
            assert r.student_id in text
        assert "70.83" in text and "18.43" in text
    problems.assert_none()


def test_every_student_page_loads_its_images_and_stays_inert(browser, sample, tmp_path):
    for result in sample.results:
        folder = sample.student_dir(result.student_id)
        with open_page(browser, folder / "index.html") as (page, problems):
            page.screenshot(path=tmp_path / f"{folder.name}.png", full_page=True)
            widths = image_widths(page)
            assert all(w > 0 for w in widths), (result.student_id, widths)
            expected = sum(1 for a in result.artifacts for p in a.previews if ".." not in p)
            assert len(widths) == expected, result.student_id
            assert page.inner_text("#student-id") == result.student_id
            assert page.evaluate("typeof window.__pwned") == "undefined"
            if result.sandbox:
                assert page.inner_text("pre.log").strip() == result.sandbox.log.replace(
                    "\x1b[32m", "").replace("\x1b[0m", "").strip()
        problems.assert_none()
    assert len(list(tmp_path.glob("*.png"))) == len(sample.results)


def test_a_student_folder_works_alone(browser, sample, tmp_path):
    """A student folder copied anywhere (zipped and mailed) still shows everything."""
    alone = tmp_path / "mailed" / "report"
    shutil.copytree(sample.student_dir(samples.PERFECT), alone)
    with open_page(browser, alone / "index.html") as (page, problems):
        page.screenshot(path=tmp_path / "alone.png", full_page=True)
        assert image_widths(page) == [122, 242, 242]
        shown = page.evaluate("Array.from(document.images).map(i => i.getAttribute('width'))")
        assert shown == ["488", "484", "484"]  # small grids scaled up by whole factors
        assert page.locator("table.noise td").count() == 64
    problems.assert_none()


def test_an_embedded_page_works_as_a_single_file(browser, sample, tmp_path):
    built = render_student_page(sample.result(samples.PERFECT), sample.student_dir(samples.PERFECT),
                                embed_images=False)
    folder = tmp_path / "embedded"
    shutil.copytree(built.parent, folder)
    page_file = render_student_page(sample.result(samples.PERFECT), folder, embed_images=True)
    single = tmp_path / "single.html"
    shutil.copyfile(page_file, single)  # the page alone, no assets beside it
    with open_page(browser, single) as (page, problems):
        assert image_widths(page) == [122, 242, 242]
    problems.assert_none()
