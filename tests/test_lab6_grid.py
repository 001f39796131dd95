"""Lab6's denoising-process grid: the grid check's noise thresholds on 64x64 RGB i-CLEVR tiles
(1-3 objects on grey), with grids made by the real forward diffusion and written as PNGs."""

from __future__ import annotations

from pathlib import Path

import iclevr
import numpy as np
import pytest

from grader.checks.grid import CLEAN_MAX, NOISE_MIN, check_process_grid
from grader.grid_synth import forward_diffusion_tiles, tiles_to_grid
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_rubric(ROOT / "rubrics" / "lab6.yaml").artifacts["process"]  # 1 row x 8, 64x64 tiles


def scenes(seed: int, n: int = 8) -> np.ndarray:
    return iclevr.render_all(iclevr.label_sets(n, seed), seed)


def check(tmp_path, tiles: np.ndarray, spec=SPEC, padding: int = 2):
    path = tmp_path / "process.png"
    tiles_to_grid(np.ascontiguousarray(tiles), padding=padding).save(path)
    return check_process_grid(path, spec, artifact="process")


def fails(report) -> set[str]:
    return {f.code for f in report.findings if f.severity.fails}


@pytest.mark.parametrize("padding", [0, 2])
@pytest.mark.parametrize("seed", range(6))
def test_forward_diffused_scene_row_passes(tmp_path, seed, padding):
    tiles = forward_diffusion_tiles(scenes(seed)[:1], seed=seed)
    report = check(tmp_path, tiles, padding=padding)
    assert report.ok, report.findings
    row = report.noise[0]
    assert row[0] >= NOISE_MIN and row[-1] <= CLEAN_MAX


def test_eight_rows_of_scenes_pass(tmp_path):
    report = check(
        tmp_path, forward_diffusion_tiles(scenes(11), seed=11), SPEC.model_copy(update={"rows": 8})
    )
    assert report.ok, report.findings
    noise = np.array(report.noise)
    assert noise[:, 0].min() >= NOISE_MIN and noise[:, -1].max() <= CLEAN_MAX


@pytest.mark.parametrize(
    "order, code",
    [
        (list(range(7, -1, -1)), "grid.reversed"),
        ([0] * 8, "grid.row_all_noise"),
        ([7] * 8, "grid.row_all_clean"),
        ([0, 6, 2, 3, 4, 5, 1, 7], "grid.column_order"),
    ],
)
def test_wrong_scene_rows_are_found(tmp_path, order, code):
    tiles = forward_diffusion_tiles(scenes(3)[:1], seed=3)[:, order]
    assert code in fails(check(tmp_path, tiles))
