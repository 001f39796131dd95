"""The process-grid check on real forward diffusions of real MNIST digits (and CelebA faces),
laid out by torchvision's make_grid and written as real PNG files."""

from __future__ import annotations

import gridmaker as gm
import numpy as np
import pytest
from PIL import Image

from grader.checks.grid import CLEAN_MAX, NOISE_MIN, check_process_grid
from grader.datasets import load_image_zip
from grader.grid_synth import make_forward_diffusion_grid, snapshot_steps
from grader.rubric import ProcessGridArtifact

HW3 = ProcessGridArtifact(kind="process_grid", content="mnist")


def run(
    tmp_path, image: Image.Image, spec: ProcessGridArtifact = HW3, name: str = "process.png", **kw
):
    path = tmp_path / name
    image.save(path)
    return check_process_grid(path, spec, artifact="process", **kw)


def error_codes(report) -> set[str]:
    return {f.code for f in report.findings if f.severity.fails}


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test[0][100:108]


@pytest.fixture(scope="module")
def tiles(digits):
    return gm.digit_tiles(digits, seed=7)


# ---------------------------------------------------------------- valid grids


def test_snapshot_steps_split_the_steps_into_seven_parts():
    assert snapshot_steps(1000, 8) == [999, 857, 714, 571, 429, 286, 143, 0]


@pytest.mark.parametrize("padding, size", [(2, 242), (0, 224)])
def test_forward_grid_has_make_grid_size(mnist_train, padding, size):
    image = make_forward_diffusion_grid(mnist_train[0][:8], padding=padding, seed=3)
    assert image.size == (size, size) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert np.array_equal(pixels[..., 0], pixels[..., 2])  # grayscale replicated to RGB
    if padding:
        assert not pixels[:2].any() and not pixels[:, 30:32].any()  # make_grid pads with 0


@pytest.mark.parametrize("split", ["test", "train"])
@pytest.mark.parametrize("padding", [0, 2])
def test_valid_grid_passes(tmp_path, mnist_test, mnist_train, split, padding):
    images = (mnist_test if split == "test" else mnist_train)[0]
    report = run(tmp_path, make_forward_diffusion_grid(images[200:208], padding=padding, seed=11))
    assert report.findings == []
    assert report.ok
    assert report.layout == {
        "ok": True,
        "rows": 8,
        "cols": 8,
        "tile": (28, 28),
        "padding": padding,
        "pad_value": 0.0 if padding else None,
        "image_size": (242, 242) if padding else (224, 224),
    }
    noise = np.array(report.noise)
    assert noise.shape == (8, 8)
    assert (noise[:, 0] >= NOISE_MIN).all() and (noise[:, -1] <= CLEAN_MAX).all()
    assert (np.diff(np.median(noise, axis=0)) < 0.12).all()


def test_reverse_chain_grid_passes(tmp_path, digits):
    report = run(tmp_path, gm.grid(gm.reverse_chain_tiles(digits, seed=9)))
    assert report.findings == []
    noise = np.array(report.noise)
    assert (noise[:, 0] >= NOISE_MIN).all() and (noise[:, -1] <= CLEAN_MAX).all()


def test_grayscale_png_with_white_padding_passes(tmp_path, tiles):
    image = gm.grid(tiles, padding=2, pad_value=1.0).convert("L")
    report = run(tmp_path, image)
    assert report.findings == []
    assert report.layout["pad_value"] == 255.0


def test_clean_to_noise_direction(tmp_path, tiles):
    spec = HW3.model_copy(update={"direction": "clean_to_noise"})
    assert run(tmp_path, gm.grid(gm.reversed_columns(tiles)), spec).findings == []
    forward = run(tmp_path, gm.grid(tiles), spec)
    assert error_codes(forward) == {"grid.reversed"}
    assert "expected noise on the right" in forward.findings[0].message


def test_generic_rgb_faces_of_64_pixels_pass(tmp_path, faces_zip):
    faces = load_image_zip(faces_zip, limit=8, size=64)
    spec = ProcessGridArtifact(kind="process_grid", tile=(64, 64), content="generic")
    report = run(tmp_path, gm.grid(gm.digit_tiles(faces, seed=1)), spec)
    assert report.findings == []
    assert report.layout["image_size"] == (8 * 66 + 2, 8 * 66 + 2)


def test_padding_outside_the_rubric_is_a_warning(tmp_path, tiles):
    report = run(tmp_path, gm.grid(tiles, padding=1))
    assert [(f.code, f.severity.value) for f in report.findings] == [("grid.padding", "warning")]
    assert "1-pixel padding" in report.findings[0].message
    assert report.noise is not None


# ---------------------------------------------------------------- each mistake, its own finding


CORRUPTIONS = {
    "reversed": (lambda t: gm.reversed_columns(t), "grid.reversed"),
    "shuffled": (lambda t: t[:, [0, 6, 2, 7, 4, 1, 3, 5]], "grid.column_order"),
    # t=571 and t=429 are both near-pure noise: only the emerging image tells them apart
    "noisy neighbours swapped": (lambda t: t[:, [0, 1, 2, 4, 3, 5, 6, 7]], "grid.column_order"),
    "all-noise row": (
        lambda t: gm.all_noise_row(t, 2, np.random.default_rng(0)),
        "grid.row_all_noise",
    ),
    "all-clean row": (lambda t: gm.all_clean_row(t, 5), "grid.row_all_clean"),
    "repeated row": (lambda t: gm.repeated_row(t, 1, 6), "grid.rows_repeated"),
    "transposed": (gm.transposed, "grid.transposed"),
    "one row out of order": (lambda t: _swap_in_row(t, 3, 3, 6), "grid.not_monotonic"),
    "7x8": (lambda t: t[:7], "grid.layout"),
    "tiles of 32": (gm.padded_tiles, "grid.layout"),
}


def _swap_in_row(tiles, row, a, b):
    out = tiles.copy()
    out[row, [a, b]] = tiles[row, [b, a]]
    return out


@pytest.mark.parametrize("padding", [0, 2])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_fails_with_its_own_finding(tmp_path, tiles, name, padding):
    corrupt, code = CORRUPTIONS[name]
    report = run(tmp_path, gm.grid(corrupt(tiles), padding=padding))
    assert error_codes(report) == {code}
    finding = next(f for f in report.findings if f.code == code)
    assert finding.artifact == "process" and finding.path == "process.png" and finding.hint


@pytest.mark.parametrize("padding", [0, 2])
def test_64_tiles_in_one_row(tmp_path, tiles, padding):
    report = run(tmp_path, gm.grid(tiles, padding=padding, nrow=64))
    assert error_codes(report) == {"grid.layout"}
    assert "1 row x 64 columns of 28x28 tiles" in report.findings[0].message
    assert report.noise is None
    assert report.layout["ok"] is False
    assert (report.layout["rows"], report.layout["cols"], report.layout["padding"]) == (
        1,
        64,
        padding,
    )


def test_layout_messages_say_what_was_found(tmp_path, tiles):
    seven = run(tmp_path, gm.grid(tiles[:7], padding=2)).findings[0].message
    assert "7 rows x 8 columns of 28x28 tiles with 2-pixel padding (242x212 pixels)" in seven
    assert "expected 8 rows x 8 columns" in seven and "242x242" in seven and "224x224" in seven
    big = run(tmp_path, gm.grid(gm.padded_tiles(tiles), padding=0)).findings[0].message
    assert (
        "256x256 pixels, which looks like 8 rows x 8 columns of 32x32 tiles without padding" in big
    )


def test_matplotlib_figure_is_not_a_grid(tmp_path, tiles):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    ax.imshow(np.asarray(gm.grid(tiles)))
    ax.set_title("diffusion process")
    fig.savefig(tmp_path / "figure.png")
    plt.close(fig)
    report = check_process_grid(tmp_path / "figure.png", HW3)
    assert error_codes(report) == {"grid.layout"}
    assert "640x480 pixels" in report.findings[0].message


def test_rows_that_stop_early_or_start_late(tmp_path, digits):
    late = gm.digit_tiles(digits, seed=2, t_values=[143, 123, 102, 82, 61, 41, 20, 0])
    report = run(tmp_path, gm.grid(late))
    assert error_codes(report) == {"grid.start_not_noise"}
    message = report.findings[0].message
    assert message.startswith("rows 1-8 do not start from noise (noise level 0.")
    assert "pure noise is about 1.0" in message

    early = gm.digit_tiles(digits, seed=2, t_values=[999, 877, 734, 592, 449, 306, 164, 143])
    assert error_codes(run(tmp_path, gm.grid(early))) == {"grid.end_not_clean"}


def test_row_messages_name_the_row_and_the_noise(tmp_path, tiles):
    noisy = run(tmp_path, gm.grid(gm.all_noise_row(tiles, 2, np.random.default_rng(1))))
    assert noisy.findings[0].message.startswith("row 3 is noise in every column (noise level ")
    clean = run(tmp_path, gm.grid(gm.all_clean_row(tiles, 0)))
    assert clean.findings[0].message.startswith("row 1 shows a finished image in every column")


def test_all_rows_the_same(tmp_path, tiles):
    same = np.repeat(tiles[:1], 8, axis=0)
    report = run(tmp_path, gm.grid(same))
    assert error_codes(report) == {"grid.rows_repeated"}
    assert report.findings[0].message.startswith("all 8 rows end in the same image")


def test_blank_rows(tmp_path, tiles):
    black_row = tiles.copy()
    black_row[4] = 0.0  # a sampler that produced NaN, saved as black
    report = run(tmp_path, gm.grid(black_row))
    assert error_codes(report) == {"grid.row_blank"}
    assert report.findings[0].message.startswith("row 5 is blank")
    black = run(tmp_path, Image.new("RGB", (242, 242)))
    assert error_codes(black) == {"grid.row_blank"}
    assert black.findings[0].message.startswith("rows 1-8 are blank")


# ---------------------------------------------------------------- content


def test_celeba_faces_are_not_digits(tmp_path, faces_zip):
    faces = load_image_zip(faces_zip, limit=8, size=28)
    report = run(tmp_path, gm.grid(gm.digit_tiles(faces, seed=4)))
    assert error_codes(report) == {"grid.not_digits"}
    assert "do not look like handwritten digits" in report.findings[0].message
    generic = HW3.model_copy(update={"content": "generic"})
    assert run(tmp_path, gm.grid(gm.digit_tiles(faces, seed=4)), generic).findings == []


def test_random_blobs_are_not_digits(tmp_path):
    blobs = gm.blob_images(8, np.random.default_rng(3))
    report = run(tmp_path, gm.grid(gm.digit_tiles(blobs, seed=4)))
    assert error_codes(report) == {"grid.not_digits"}


def test_inverted_digits(tmp_path, digits):
    report = run(tmp_path, gm.grid(gm.digit_tiles(255 - digits, seed=5)))
    assert error_codes(report) == {"grid.digits_inverted"}


def test_digit_classifier_hook(tmp_path, tiles):
    seen = []

    def unsure(batch):
        seen.append(batch)
        return np.full(len(batch), 0.2)

    report = run(tmp_path, gm.grid(tiles), digit_classifier=unsure)
    assert error_codes(report) == {"grid.not_digits"}
    assert "classifier is not confident" in report.findings[0].message
    assert seen[0].shape == (8, 28, 28) and seen[0].dtype == np.uint8
    assert run(tmp_path, gm.grid(tiles), digit_classifier=lambda b: np.ones(len(b))).findings == []


# ---------------------------------------------------------------- files


def test_unreadable_files(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    truncated = tmp_path / "truncated.png"
    make = tmp_path / "whole.png"
    Image.new("RGB", (242, 242)).save(make)
    truncated.write_bytes(make.read_bytes()[:60])
    for name in ("text.png", "truncated.png", "missing.png"):
        report = check_process_grid(tmp_path / name, HW3)
        assert error_codes(report) == {"grid.unreadable"}, name
        assert report.noise is None and name in report.findings[0].message


def test_jpeg_is_the_wrong_format(tmp_path, tiles):
    report = run(tmp_path, gm.grid(tiles), name="process.jpg")
    assert error_codes(report) == {"grid.format"}  # the tiles are still found and checked
    assert report.layout["padding"] == 2 and report.noise is not None
    assert "is a JPEG image; expected PNG" in next(
        f.message for f in report.findings if f.code == "grid.format"
    )

