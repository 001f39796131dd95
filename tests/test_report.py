"""Report pages and previews, checked on the written files (the browser tests are apart)."""

from __future__ import annotations

import base64
import random
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import report_samples as samples
from PIL import Image

from grader.codes import CODES
from grader.layout import student_dir_name
from grader.report import (
    render_all,
    render_class_page,
    render_student_page,
    write_previews,
)
from grader.report.render import LOG_HEAD_CHARS, LOG_TAIL_CHARS
from grader.results import SandboxRun
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits(mnist_test) -> np.ndarray:
    return mnist_test[0][:400]


@pytest.fixture(scope="module")
def sample(tmp_path_factory, digits) -> samples.SampleClass:
    base = tmp_path_factory.mktemp("report")
    sample = samples.build_class(base / "results", digits, base / "work")
    render_all(sample.results, sample.run, sample.out_dir)
    return sample


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


def page(sample: samples.SampleClass, student_id: str) -> str:
    return (sample.student_dir(student_id) / "index.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------- previews


def test_previews_are_reproducible_and_depend_only_on_names_and_seed(tmp_path, digits):
    pngs = samples.write_digit_pngs(digits[:80], tmp_path / "a")
    first = write_previews(pngs, tmp_path / "out1", seed=0)
    assert [p.name for p in first] == ["grid16.png", "grid64.png"]

    shuffled = pngs[:]
    random.Random(1).shuffle(shuffled)
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere")
    moved = sorted((tmp_path / "elsewhere").iterdir())
    second = write_previews(shuffled, tmp_path / "out2", seed=0)
    third = write_previews(moved, tmp_path / "out3", seed=0)
    for a, b, c in zip(first, second, third):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes()

    other_seed = write_previews(pngs, tmp_path / "out4", seed=1)
    assert other_seed[1].read_bytes() != first[1].read_bytes()

    with Image.open(first[0]) as g16, Image.open(first[1]) as g64:
        assert g16.size == (4 * 30 + 2, 4 * 30 + 2)  # 28-pixel tiles, 2-pixel padding
        assert g64.size == (8 * 30 + 2, 8 * 30 + 2)


def _tiles(grid: Path, side: int, tile: int = 28) -> list[np.ndarray]:
    array = np.asarray(Image.open(grid).convert("L"))
    return [
        array[2 + r * (tile + 2) : 2 + r * (tile + 2) + tile, 2 + c * (tile + 2) : 2 + c * (tile + 2) + tile]
        for r in range(side)
        for c in range(side)
    ]


def test_previews_show_real_images_skip_unreadable_and_leave_the_rest_grey(tmp_path, digits):
    samples.write_digit_pngs(digits[:5], tmp_path / "set")
    (tmp_path / "set" / "00006.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "set" / "00007.png").write_bytes(b"")
    files = sorted((tmp_path / "set").iterdir())
    written = write_previews(files, tmp_path / "out", seed=3)
    assert len(written) == 2

    tiles = _tiles(written[0], 4)
    sources = [d.tobytes() for d in digits[:5]]
    shown = [t for t in tiles if not (t == 128).all()]
    assert len(shown) == 5
    assert sorted(t.tobytes() for t in shown) == sorted(sources)  # each digit once, unchanged


def test_previews_resize_to_the_requested_tile(tmp_path, digits):
    pngs = samples.write_digit_pngs(digits[:20], tmp_path / "set")
    grid16, grid64 = write_previews(pngs, tmp_path / "out", tile=14)
    assert Image.open(grid16).size == (4 * 16 + 2, 4 * 16 + 2)
    assert Image.open(grid64).size == (8 * 16 + 2, 8 * 16 + 2)


def test_previews_of_nothing_readable_write_nothing(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"garbage")
    assert write_previews([], tmp_path / "out") == []
    assert write_previews([bad], tmp_path / "out") == []
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- folder names


@pytest.mark.parametrize("student_id", ["0712345", "r09922001", "A.B_c-1"])
def test_safe_ids_are_their_own_folder_names(student_id):
    assert student_dir_name(student_id) == student_id


def test_unsafe_ids_become_distinct_safe_folder_names():
    ids = ["a/b", "a\\b", "a?b", "..", ".", "", "CON", "-rf", ".hidden", "學生 1", samples.HOSTILE,
           "x" * 300, "a b", "a_b", "abc."]
    names = [student_dir_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name
        assert len(name) <= 64
    assert student_dir_name("a_b") == "a_b"


# ---------------------------------------------------------------- determinism


def test_rendering_is_byte_for_byte_reproducible(tmp_path, digits, sample):
    # An independent build (previews written again) rendered from shuffled records.
    other = samples.build_class(tmp_path / "results", digits, tmp_path / "work")
    render_all(list(reversed(other.results)), other.run, other.out_dir)

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    first, second = files(sample.out_dir), files(other.out_dir)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert "index.html" in first and f"students/{samples.PERFECT}/assets/images/grid64.png" in first


# ---------------------------------------------------------------- safety


def test_submission_text_is_escaped_in_every_page(sample):
    pages = {"class": (sample.out_dir / "index.html").read_text(encoding="utf-8"),
             "student": page(sample, samples.HOSTILE)}
    for name, html in pages.items():
        assert "<script>window.__pwned" not in html, name
        assert "<img src=x" not in html, name
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html, name
        tags = Tags(html)
        handlers = [(t, k) for t, attrs in tags.tags for k in attrs if k.startswith("on")]
        assert handlers == [], name
        assert [a.get("src") for a in tags.find("img")] == [], name
    assert "&lt;/pre&gt;&lt;script&gt;window.__pwned=4" in pages["student"]  # the sandbox log
    assert Tags(pages["student"]).scripts == []  # student pages run no script at all
    class_scripts = Tags(pages["class"]).scripts
    assert len(class_scripts) == 1 and "__pwned" not in class_scripts[0]


def test_every_page_forbids_foreign_scripts_and_network(sample):
    for path in sorted(sample.out_dir.rglob("index.html")):
        tags = Tags(path.read_text(encoding="utf-8"))
        csp = [a["content"] for a in tags.find("meta")
               if a.get("http-equiv") == "Content-Security-Policy"]
        assert len(csp) == 1 and "default-src 'none'" in csp[0], path
        assert re.search(r"script-src ('none'|'sha256-[A-Za-z0-9+/=]+');", csp[0]), path


def test_student_pages_only_reference_their_own_folder(sample):
    for result in sample.results:
        folder = sample.student_dir(result.student_id)
        html = page(sample, result.student_id)
        tags = Tags(html)
        assert tags.find("link") == [{"rel": "icon", "href": "data:,"}]
        assert "@import" not in html and "url(" not in html and "@font-face" not in html
        for tag, attrs in tags.tags:
            for key in ("src", "href", "action", "data"):
                ref = attrs.get(key)
                if ref is None or ref.startswith("data:"):
                    continue
                assert tag == "img", (tag, ref)
                assert not re.match(r"^[a-z][a-z0-9+.-]*:|^/|\\", ref), ref
                assert ".." not in ref.split("/"), ref
                assert (folder / ref).resolve().is_relative_to(folder.resolve())
                assert (folder / ref).is_file(), ref
    assert "grid16.png not shown: not inside the student folder" in page(sample, samples.HOSTILE)


# ---------------------------------------------------------------- content


def test_perfect_student_page_shows_grade_provenance_grids_and_noise(sample):
    html = page(sample, samples.PERFECT)
    tags = Tags(html)
    assert '<span id="final-grade">100</span>' in html
    assert samples.WEIGHTS_SHA in html and samples.STATS_SHA in html
    assert "pytorch-gan-metrics" in html and "0.5.3" in html and "18.4321" in html
    assert [a["src"] for a in tags.find("img")] == [
        "assets/images/grid16.png", "assets/images/grid64.png", "assets/process/process.png"]
    noise_cells = re.findall(r'<td style="background:#[0-9a-f]{6};color:#[0-9a-f]{6}">',
                             html.split('class="heat noise"')[1].split("</table>")[0])
    assert len(noise_cells) == 64
    assert "loading weights" in html and "\x1b" not in html  # colour codes stripped


def test_findings_show_message_explanation_and_hint(sample):
    result = sample.result(samples.FINDINGS)
    html = page(sample, samples.FINDINGS)
    for f in result.findings:
        assert f'data-code="{f.code}"' in html
        assert f.message.replace("'", "&#39;") in html
        assert f.fix.replace("'", "&#39;") in html  # its own hint, else the catalogue's
        assert CODES[f.code].explanation.replace("'", "&#39;") in html
    # Errors come before warnings, warnings before info.
    order = [html.index(f'data-code="{c}"') for c in
             ("images.count", "images.names", "zip.junk", "submission.optional_absent")]
    assert order == sorted(order)


def test_late_small_n_crash_and_missing_fid_are_explained(tmp_path, sample):
    late = page(sample, samples.LATE)
    assert "Submitted 2 days late: 20 points deducted" in late
    assert "biased upward for small N" in late
    assert late.count("Late penalty") == 1 and "Before the late policy" not in late
    # A grade whose lines leave the late deduction out gets it added as its own row.
    result = sample.result(samples.LATE).model_copy(deep=True)
    result.grade.lines = result.grade.lines[:-1]
    html = render_student_page(result, tmp_path).read_text(encoding="utf-8")
    assert "Before the late policy" in html and "Late: 2 days</td><td class=\"num\">-20<" in html
    crashed = page(sample, samples.CRASHED)
    # The grader's traceback stays in the store for the TA; a student page shows it only on request.
    assert "The grader could not finish" in crashed and "MemoryError" not in crashed
    shown = render_student_page(sample.result(samples.CRASHED), tmp_path / "tb", show_tracebacks=True)
    assert "MemoryError" in shown.read_text(encoding="utf-8")
    assert "No grade was computed" in crashed
    no_fid = page(sample, samples.NO_FID)
    assert "Not computed: the image set has problems (images.count)" in no_fid


def test_long_sandbox_logs_are_shortened_keeping_the_end(tmp_path, sample):
    result = sample.result(samples.PERFECT).model_copy(deep=True)
    log = "".join(f"line {i}\n" for i in range(20_000)) + "RuntimeError: CUDA out of memory\n"
    result.sandbox = SandboxRun(backend="docker", command="python sample.py", exit_code=1, log=log)
    html = render_student_page(result, tmp_path / "s").read_text(encoding="utf-8")
    assert "RuntimeError: CUDA out of memory" in html and "line 0\n" in html
    omitted = len(log) - LOG_HEAD_CHARS - LOG_TAIL_CHARS
    assert f"… {omitted:,} characters omitted …" in html
    assert len(html) < len(log) // 2


def test_rubric_adds_expectations_and_the_points_rule(tmp_path, sample):
    rubric = load_rubric(ROOT / "rubrics" / "hw3.yaml")
    result = sample.result(samples.PERFECT)
    html = render_student_page(result, tmp_path, run=sample.run, rubric=rubric).read_text(
        encoding="utf-8"
    )
    assert "Expected: 10,000 images named 00001.png ... 10000.png; each PNG, 28x28 pixels" in html
    assert "Note: " + rubric.artifacts["images"].description.replace("'", "&#39;") in html
    assert ("FID vs MNIST train up to 40: 100 points; 100 and above: 0 points; "
            "linear in between.") in html
    assert "HW3 Diffusion generative model" in html


def test_class_page_counts_findings_histograms_and_links(sample):
    html = (sample.out_dir / "index.html").read_text(encoding="utf-8")
    tags = Tags(html)
    rows = [a for a in tags.find("tr") if "data-id" in a]
    assert sorted(r["data-id"] for r in rows) == sorted(r.student_id for r in sample.results)
    links = [a["href"] for a in tags.find("a")]
    assert len(links) == len(sample.results)
    for href in links:
        assert (sample.out_dir / href).is_file()

    counts = [int(a["data-count"]) for a in tags.find("rect")]
    graded = [r for r in sample.results if r.grade is not None]
    with_fid = [r for r in sample.results if r.metric("fid") and r.metric("fid").value is not None]
    assert sum(counts) == len(graded) + len(with_fid)

    codes = html.split('id="finding-codes"')[1]
    rows = {m[0]: m[1:] for m in re.findall(
        r'<tr><td class="code"><code>([^<]+)</code></td>.*?<td class="num">(\d+)</td><td class="num">(\d+)</td>',
        codes)}
    assert rows == {"images.count": ("2", "2"), "images.names": ("2", "2"),
                    "zip.junk": ("1", "1"), "submission.optional_absent": ("1", "1")}
    for key in ("rubric_hash", "command"):
        assert getattr(sample.run, key) in html
    assert "2026-10-08 08:00:00+08:00" in html and "Linux x86_64" in html


def test_class_page_of_an_empty_class(tmp_path, sample):
    html = render_class_page([], sample.run, tmp_path).read_text(encoding="utf-8")
    assert "0 students" in html and "No findings in this class." in html
    assert "Grade: no student has a value." in html and "<rect" not in html


def test_embedded_images_make_a_single_file_page(tmp_path, sample):
    result = sample.result(samples.PERFECT)
    alone = tmp_path / "alone"
    shutil.copytree(sample.student_dir(samples.PERFECT), alone)
    html = render_student_page(result, alone, embed_images=True, run=sample.run).read_text(
        encoding="utf-8"
    )
    sources = [a["src"] for a in Tags(html).find("img")]
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    grid16 = sample.student_dir(samples.PERFECT) / "assets" / "images" / "grid16.png"
    assert sources[0] == "data:image/png;base64," + base64.b64encode(grid16.read_bytes()).decode()



def test_zero_is_never_negative():
    from grader.report.render import format_number

    assert [format_number(v) for v in (-0.0, -0.001, -0.5, 12.345, 100.0, None)] == [
        "0", "0", "-0.5", "12.35", "100", "–"]


def test_previews_that_are_not_images_are_not_shown(tmp_path, sample):
    result = sample.result(samples.PERFECT).model_copy(deep=True)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "fake.png").write_text("<svg onload=alert(1)>")
    result.artifacts[0].previews = ["assets/fake.png", "assets/absent.png", "/etc/passwd"]
    html = render_student_page(result, tmp_path).read_text(encoding="utf-8")
    assert Tags(html).find("img") == []
    assert "fake.png not shown: missing or unreadable" in html
    assert "absent.png not shown: missing or unreadable" in html
    assert "passwd not shown: not inside the student folder" in html
