"""The reference DDPM, DCGAN and digit classifier: shapes, schedule maths, determinism,
the HW3 process grid, resumable training, committed classifier accuracy, a DCGAN step on
real CelebA crops, and a round trip to the HW3 submission format."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from grader.datasets import load_image_zip
from grader.errors import GraderError
from reference.__main__ import main as reference_cli
from reference.baseline import write_hw3_submission
from reference.classifier import (
    DEFAULT_WEIGHTS,
    DigitCNN,
    classify_digits,
    evaluate_accuracy,
    load_digit_classifier,
)
from reference.data import load_faces
from reference.dcgan import Discriminator, Generator, sample_dcgan, train_dcgan
from reference.ddpm import (
    LinearSchedule,
    build_model,
    ddim_timesteps,
    generate,
    generate_ddim,
    load_sampler,
    process_tiles,
    process_timesteps,
    sample_ddpm,
    train_ddpm,
)
from reference.images import save_grid
from reference.presets import DCGAN_TRAIN, DDPM_SAMPLE, DDPM_TRAIN
from reference.training import latest_checkpoint, load_checkpoint
from reference.unet import UNet

TINY = {"width": 8, "blocks": 1, "batch_size": 16, "limit": 256, "progress": False}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, above all on a shared, busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_ddpm(mnist_dir, tmp_path_factory):
    """A briefly trained tiny DDPM with a short chain (T=40) for the sampling tests."""
    out = tmp_path_factory.mktemp("ddpm_t40")
    train_ddpm(mnist_dir, out, steps=20, timesteps=40, save_every=20, device="cpu", **TINY)
    return out


@pytest.fixture(scope="module")
def tiny_ddpm_t1000(mnist_dir, tmp_path_factory):
    """The course schedule (T=1000) on a tiny, briefly trained network, for the grid test."""
    out = tmp_path_factory.mktemp("ddpm_t1000")
    train_ddpm(mnist_dir, out, steps=20, timesteps=1000, save_every=20, device="cpu", **TINY)
    return out


def _png(path_or_bytes) -> Image.Image:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    image = Image.open(source)
    image.load()
    return image


# --- shapes -------------------------------------------------------------------------------


def test_model_shapes():
    x = torch.randn(3, 1, 28, 28)
    assert UNet(width=8, blocks=1)(x, torch.tensor([1, 500, 1000])).shape == (3, 1, 28, 28)
    assert UNet(width=8, blocks=2)(x, torch.tensor([1, 2, 3])).shape == (3, 1, 28, 28)

    z = torch.randn(2, 100, 1, 1)
    faces = Generator(width=8, channels=3, size=64)(z)
    digits = Generator(width=8, channels=1, size=28)(z)
    assert faces.shape == (2, 3, 64, 64) and digits.shape == (2, 1, 28, 28)
    assert faces.abs().max() <= 1 and digits.abs().max() <= 1  # tanh output
    for size, images in ((64, faces), (28, digits)):
        p = Discriminator(width=8, channels=images.shape[1], size=size)(images)
        assert p.shape == (2,) and bool(((p > 0) & (p < 1)).all())

    assert DigitCNN()(x).shape == (3, 10)


# --- schedule maths -----------------------------------------------------------------------


def test_linear_schedule_values():
    schedule = LinearSchedule()
    betas = schedule.betas.double()
    assert len(betas) == 1000
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    expected_step = torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64)
    assert torch.allclose(betas.diff(), expected_step)
    alpha_bar = 1.0
    for t in range(1, 1001):
        alpha_bar *= 1.0 - (1e-4 + (0.02 - 1e-4) * (t - 1) / 999)
        if t in (1, 10, 100, 500, 1000):
            assert schedule.alpha_bars[t - 1].item() == pytest.approx(alpha_bar, rel=1e-5)
    assert schedule.alpha_bars[-1].item() < 1e-4  # x_T is (almost) pure noise


@pytest.mark.parametrize("t", [1, 50, 250, 600, 1000])
def test_q_sample_matches_closed_form(mnist_test, t):
    """Per pixel, over many draws: mean sqrt(abar_t) x0 and variance 1 - abar_t."""
    schedule = LinearSchedule()
    x0 = torch.from_numpy(mnist_test[0][:1].astype(np.float32)).div(127.5).sub(1).unsqueeze(1)
    draws = 4000
    generator = torch.Generator().manual_seed(t)
    noise = torch.randn((draws, 1, 28, 28), generator=generator)
    xt = schedule.q_sample(x0.expand(draws, -1, -1, -1), torch.full((draws,), t), noise)

    abar = schedule.alpha_bars[t - 1].double().item()
    mean, var = xt.double().mean(0), xt.double().var(0)
    standard_error = math.sqrt((1 - abar) / draws)
    assert (mean - math.sqrt(abar) * x0[0].double()).abs().max() < 5 * standard_error
    relative = (var / (1 - abar) - 1).abs().max().item()
    assert relative < 5 * math.sqrt(2 / draws)


def test_forward_chain_step_by_step_equals_closed_form():
    """Applying q(x_t | x_{t-1}) t times gives the law of q(x_t | x_0) at several t."""
    schedule = LinearSchedule()
    x0 = torch.linspace(-1, 1, 8, dtype=torch.float64).repeat(2500)  # 20,000 chains
    generator = torch.Generator().manual_seed(0)
    x = x0.clone()
    mean_coef, variance = 1.0, 0.0  # the recursion, in exact arithmetic on the betas
    for t, beta in enumerate(schedule.betas.double().tolist(), start=1):
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(
            x.shape, generator=generator, dtype=torch.float64
        )
        mean_coef, variance = mean_coef * math.sqrt(1 - beta), (1 - beta) * variance + beta
        # the closed form the trainer uses: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps
        sqrt_abar = schedule.sqrt_alpha_bars[t - 1].item()
        sqrt_one_minus = schedule.sqrt_one_minus_alpha_bars[t - 1].item()
        assert mean_coef == pytest.approx(sqrt_abar, rel=1e-6)
        assert math.sqrt(variance) == pytest.approx(sqrt_one_minus, rel=1e-6)
        if t in (20, 200, 700, 1000):
            z = (x - sqrt_abar * x0) / sqrt_one_minus
            assert abs(z.mean().item()) < 0.04  # standard error 0.007
            assert abs(z.var().item() - 1) < 0.05


def test_process_timesteps_documented_values():
    assert process_timesteps(1000) == [1000, 858, 716, 574, 432, 290, 148, 0]
    assert process_timesteps(40) == [40, 35, 30, 25, 20, 15, 10, 0]


# --- determinism --------------------------------------------------------------------------


def test_ddpm_sample_cli_is_deterministic(tiny_ddpm, tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = CliRunner().invoke(reference_cli, [
            "ddpm", "sample", "--checkpoint", str(tiny_ddpm), "--output", str(tmp_path / name),
            "--num", "5", "--seed", str(seed), "--batch-size", "3", "--device", "cpu", "--quiet",
        ])
        assert result.exit_code == 0, result.output
        runs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert list(runs["a"]) == ["00001.png", "00002.png", "00003.png", "00004.png", "00005.png"]
    assert runs["a"] == runs["b"]
    assert all(runs["a"][k] != runs["c"][k] for k in runs["a"])
    # five different images, not one image repeated
    assert len(set(runs["a"].values())) == 5
    for data in runs["a"].values():
        image = _png(data)
        assert (image.format, image.size, image.mode) == ("PNG", (28, 28), "RGB")


def test_dcgan_sample_is_deterministic(faces_zip, tmp_path):
    train_dcgan(faces_zip, tmp_path / "gan", steps=1, width=8, batch_size=4, limit=8,
                device="cpu", progress=False)
    first = sample_dcgan(tmp_path / "gan", tmp_path / "s1", 3, seed=1, device="cpu",
                         progress=False)
    sample_dcgan(tmp_path / "gan", tmp_path / "s2", 3, seed=1, device="cpu", progress=False)
    assert first["count"] == 3
    for name in ("00001.png", "00002.png", "00003.png"):
        assert (tmp_path / "s1" / name).read_bytes() == (tmp_path / "s2" / name).read_bytes()


# --- the HW3 process grid -----------------------------------------------------------------


def test_process_grid_layout(tiny_ddpm_t1000, tmp_path):
    model, schedule = load_sampler(tiny_ddpm_t1000, torch.device("cpu"))
    assert schedule.timesteps == 1000  # columns: t = 1000, 858, ..., 148, 0
    tiles = process_tiles(model, schedule, seed=0)
    assert tiles.shape == (64, 3, 28, 28) and tiles.dtype == torch.uint8

    for padding, side in ((2, 242), (0, 224)):
        path = save_grid(tiles, tmp_path / f"grid{padding}.png", nrow=8, padding=padding)
        grid = _png(path)
        assert (grid.format, grid.size, grid.mode) == ("PNG", (side, side), "RGB")
        pixels = np.asarray(grid)
        step = 28 + padding
        for row in range(8):
            for col in range(8):
                top, left = padding + row * step, padding + col * step
                tile = pixels[top : top + 28, left : left + 28]
                # tile 8*row + col of make_grid is sample `row` at column `col`
                assert np.array_equal(tile, tiles[8 * row + col].permute(1, 2, 0).numpy())
        if padding:
            assert pixels[:padding].max() == 0 and pixels[:, :padding].max() == 0

    gray = tiles[:, 0].float().reshape(8, 8, 28, 28)
    noise_std = gray[:, 0].std(dim=(1, 2))
    assert bool((noise_std > 80).all()), noise_std  # clipped N(0,1) noise: std about 100 of 255
    # clipped N(0,1): about 31.7% of the pixels saturate at 0 or 255
    saturated = ((gray[:, 0] == 0) | (gray[:, 0] == 255)).float().mean().item()
    assert 0.25 < saturated < 0.40
    assert all(not torch.equal(gray[i, 0], gray[i, -1]) for i in range(8))  # the chain moved
    assert len({gray[i, 0].sum().item() for i in range(8)}) == 8  # 8 different samples
    # gray digits written as RGB: the three channels agree
    assert bool((tiles[:, 0] == tiles[:, 1]).all() and (tiles[:, 1] == tiles[:, 2]).all())


def test_sample_cli_writes_grid_with_padding_option(tiny_ddpm, tmp_path):
    for padding, side in (("2", 242), ("0", 224)):
        grid = tmp_path / f"process{padding}.png"
        result = CliRunner().invoke(reference_cli, [
            "ddpm", "sample", "--checkpoint", str(tiny_ddpm), "--output", str(tmp_path / "imgs"),
            "--num", "1", "--seed", "0", "--grid", str(grid), "--grid-padding", padding,
            "--device", "cpu", "--quiet",
        ])
        assert result.exit_code == 0, result.output
        image = _png(grid)
        assert (image.size, image.mode) == ((side, side), "RGB")


# --- resumable training -------------------------------------------------------------------


def test_resumed_training_equals_straight_training(mnist_dir, tmp_path):
    options = dict(timesteps=40, device="cpu", **TINY)
    train_ddpm(mnist_dir, tmp_path / "straight", steps=8, save_every=8, **options)
    train_ddpm(mnist_dir, tmp_path / "resumed", steps=4, save_every=4, **options)
    half = load_checkpoint(tmp_path / "resumed", "ddpm")
    assert half["step"] == 4 and half["optimizer"]["state"]
    train_ddpm(mnist_dir, tmp_path / "resumed", steps=8, save_every=4, **options)

    straight = load_checkpoint(tmp_path / "straight", "ddpm")
    resumed = load_checkpoint(tmp_path / "resumed", "ddpm")
    assert latest_checkpoint(tmp_path / "resumed").name == "ckpt_0000008.pt"
    assert straight["step"] == resumed["step"] == 8
    assert [s for s, _ in resumed["losses"]] == list(range(1, 9))
    np.testing.assert_allclose(
        [v for _, v in resumed["losses"]], [v for _, v in straight["losses"]], rtol=1e-4
    )
    for key in ("model", "ema"):
        for name, value in straight[key].items():
            torch.testing.assert_close(resumed[key][name], value, rtol=1e-4, atol=1e-6)
    opt_a, opt_b = straight["optimizer"]["state"], resumed["optimizer"]["state"]
    assert opt_a.keys() == opt_b.keys()
    for index in opt_a:
        assert opt_a[index]["step"].item() == opt_b[index]["step"].item() == 8
        torch.testing.assert_close(opt_b[index]["exp_avg_sq"], opt_a[index]["exp_avg_sq"],
                                   rtol=1e-4, atol=1e-10)
    assert (tmp_path / "resumed" / "loss.png").is_file()


def test_resume_refuses_a_different_architecture(mnist_dir, tmp_path):
    options = dict(timesteps=40, device="cpu", save_every=2, **TINY)
    train_ddpm(mnist_dir, tmp_path, steps=2, **options)
    with pytest.raises(GraderError, match="width"):
        train_ddpm(mnist_dir, tmp_path, steps=4, **{**options, "width": 16})


# --- the committed digit classifier -------------------------------------------------------


def test_committed_classifier_weights_are_small():
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 1_000_000


def test_classifier_accuracy_on_real_mnist_test(mnist_dir):
    assert evaluate_accuracy(load_digit_classifier(), mnist_dir, "test") >= 0.99


def test_classify_digits_outputs(mnist_test):
    images, labels = mnist_test
    predicted, confidence = classify_digits(images[:200])
    assert predicted.shape == confidence.shape == (200,)
    assert predicted.dtype == np.int64 and confidence.dtype == np.float32
    assert bool(((confidence > 0) & (confidence <= 1)).all())
    assert (predicted == labels[:200]).mean() >= 0.97
    rgb_predicted, _ = classify_digits(np.repeat(images[:200, :, :, None], 3, axis=3))
    assert np.array_equal(rgb_predicted, predicted)
    blank_label, blank_confidence = classify_digits(np.zeros((1, 28, 28), np.uint8))
    assert blank_label.shape == blank_confidence.shape == (1,)
    with pytest.raises(ValueError, match="28"):
        classify_digits(np.zeros((2, 32, 32), np.uint8))


# --- DCGAN on real CelebA crops -----------------------------------------------------------


def test_dcgan_trains_on_celeba_crops_and_plots_losses(faces_zip, tmp_path):
    summary = train_dcgan(faces_zip, tmp_path / "gan", steps=3, width=8, batch_size=8, limit=16,
                          save_every=3, device="cpu", progress=False)
    state = load_checkpoint(tmp_path / "gan", "dcgan")
    assert state["config"]["size"] == 64 and state["config"]["channels"] == 3
    assert [s for s, _ in state["losses"]["generator"]] == [1, 2, 3]
    d_first = state["losses"]["discriminator"][0][1]
    g_first = state["losses"]["generator"][0][1]
    # BCE of a near-chance discriminator: about 2 ln 2 for D (real + fake), ln 2 for G
    assert 0.7 < d_first < 2.5 and 0.2 < g_first < 2.0
    plot = _png(summary["loss_plot"])
    assert plot.format == "PNG" and plot.size[0] > 300

    result = sample_dcgan(tmp_path / "gan", tmp_path / "samples", 17, seed=0,
                          grid=tmp_path / "grid.png", batch_size=10, device="cpu", progress=False)
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == [f"{i:05d}.png" for i in range(1, 18)]
    assert _png(tmp_path / "samples" / "00017.png").size == (64, 64)
    assert _png(result["grid"]).size == (4 * 64 + 5 * 2,) * 2


def test_face_folder_and_zip_load_alike(faces_zip, tmp_path):
    from_zip = load_faces(faces_zip, 64, limit=3)
    with zipfile.ZipFile(faces_zip) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".jpg"))[:3]
        for name in names:
            (tmp_path / name.split("/")[-1]).write_bytes(archive.read(name))
    from_folder = load_faces(tmp_path, 64)
    assert from_zip.shape == (3, 3, 64, 64) and from_zip.dtype == torch.uint8
    assert torch.equal(from_zip, from_folder)
    assert torch.equal(from_zip.permute(0, 2, 3, 1), torch.from_numpy(
        load_image_zip(faces_zip, limit=3, size=64)))


# --- round trip to the HW3 submission format ----------------------------------------------


def test_hw3_submission_round_trip(tiny_ddpm, tmp_path):
    paths = write_hw3_submission(tiny_ddpm, tmp_path, "0123456", num=12, seed=0,
                                 device="cpu", progress=False)
    assert paths["images"].name == "0123456.zip"
    with zipfile.ZipFile(paths["images"]) as archive:
        names = archive.namelist()
        assert names == [f"{i:05d}.png" for i in range(1, 13)]  # flat, ordered, no junk
        for name in names:
            image = _png(archive.read(name))
            assert (image.format, image.size, image.mode) == ("PNG", (28, 28), "RGB")
    assert len(list(paths["images_dir"].glob("*.png"))) == 12

    process = _png(paths["process"])
    assert (process.format, process.size, process.mode) == ("PNG", (242, 242), "RGB")

    with zipfile.ZipFile(paths["source"]) as archive:
        names = set(archive.namelist())
    assert {"README.md", "reference/ddpm.py", "reference/unet.py", "grader/datasets.py"} <= names
    assert not any(n.endswith((".pt", ".pth", ".gz", ".npz")) for n in names)

    again = write_hw3_submission(tiny_ddpm, tmp_path / "again", "0123456", num=12, seed=0,
                                 device="cpu", progress=False)
    for key in ("images", "process", "source"):
        assert again[key].read_bytes() == paths[key].read_bytes()


# --- the DDIM sampler ---------------------------------------------------------------------


def test_ddim_timesteps():
    fifty = ddim_timesteps(1000, 50)
    assert len(fifty) == 50 and fifty[0] == 1000 and fifty[-1] == 1
    assert fifty == sorted(set(fifty), reverse=True)
    assert fifty[:3] == [1000, 980, 959]
    assert ddim_timesteps(1000, 1000) == list(range(1000, 0, -1))
    assert ddim_timesteps(40, 1) == [40]
    for bad in (0, 41):
        with pytest.raises(GraderError, match="DDIM steps"):
            ddim_timesteps(40, bad)


class GaussianOracle(torch.nn.Module):
    """The exact noise predictor for data ~ N(0, s^2) per pixel: E[eps | x_t] =
    sqrt(1 - abar_t) x_t / (abar_t s^2 + 1 - abar_t). A correct sampler turns N(0, 1) noise
    into N(0, s^2) images with it."""

    def __init__(self, schedule: LinearSchedule, s: float):
        super().__init__()
        self.abar, self.s2 = schedule.alpha_bars.double(), s * s

    def forward(self, x, t):
        abar = self.abar[t - 1].view(-1, 1, 1, 1)
        return ((1 - abar).sqrt() * x.double() / (abar * self.s2 + 1 - abar)).float()


def _ddim_gain(abar: list[float], s2: float, visited: list[int]) -> float:
    """With the oracle, x0 and eps are multiples of x_t, so eta-0 DDIM multiplies x_T by a
    number: the product over steps of sqrt(abar_s) c_t + sqrt(1 - abar_s) d_t (DDIM eq. 12)."""
    gain = 1.0
    for t, s in zip(visited, [*visited[1:], 0]):
        a, b = abar[t - 1], (abar[s - 1] if s else 1.0)
        d = math.sqrt(1 - a) / (a * s2 + 1 - a)  # eps = d x_t
        c = (1 - math.sqrt(1 - a) * d) / math.sqrt(a)  # x0 = c x_t
        gain *= math.sqrt(b) * c + math.sqrt(1 - b) * d
    return gain


@pytest.mark.parametrize("steps", [20, 50])
def test_ddim_eta0_is_the_ddim_update(steps):
    """Few DDIM steps shrink a narrow Gaussian (50 steps: std 0.2745 for 0.3): the sampler
    must give exactly DDIM's map, x_0 = gain * x_T, pixel by pixel."""
    schedule = LinearSchedule()
    images = generate_ddim(GaussianOracle(schedule, 0.3), schedule, 4,
                           torch.Generator().manual_seed(0), torch.device("cpu"), steps, 0.0)
    x_t = torch.randn((4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    gain = _ddim_gain(schedule.alpha_bars.double().tolist(), 0.09, ddim_timesteps(1000, steps))
    assert 0.2 < gain < 0.3
    torch.testing.assert_close(images, (gain * x_t).clamp(-1, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim eta 0", "ddim eta 1", "ddpm"])
def test_samplers_reach_the_data_distribution_of_an_oracle(sampler):
    """With all 1,000 steps every sampler turns N(0, 1) noise into N(0, 0.3^2) images."""
    schedule = LinearSchedule()
    oracle = GaussianOracle(schedule, 0.3)  # |x| > 1 is 3.3 sigma: clipping barely matters
    generator = torch.Generator().manual_seed(0)
    if sampler == "ddpm":
        images, _ = generate(oracle, schedule, 32, generator, torch.device("cpu"))
    else:
        eta = float(sampler[-1])
        images = generate_ddim(oracle, schedule, 32, generator, torch.device("cpu"), 1000, eta)
    assert images.shape == (32, 1, 28, 28)
    assert abs(images.double().std().item() - 0.3) < 0.01  # 25,088 pixels
    assert abs(images.double().mean().item()) < 0.01


def test_ddim_eta0_is_a_deterministic_map_of_the_initial_noise():
    schedule = LinearSchedule(40)
    model = UNet(width=8, blocks=1).eval()
    runs = [generate_ddim(model, schedule, 3, torch.Generator().manual_seed(seed),
                          torch.device("cpu"), 10, 0.0) for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    noisy = [generate_ddim(model, schedule, 3, torch.Generator().manual_seed(5),
                           torch.device("cpu"), 10, eta) for eta in (0.0, 1.0)]
    assert not torch.equal(noisy[0], noisy[1])


# --- presets ------------------------------------------------------------------------------


def test_presets_keep_the_gpu_recipe_and_name_a_smaller_cpu_one():
    assert DDPM_TRAIN["gpu"] == {"steps": 30000, "width": 64, "blocks": 2, "attention": True,
                                 "batch_size": 128, "lr": 2e-4, "ema_decay": 0.9995,
                                 "save_every": 1000}
    assert DDPM_SAMPLE["gpu"]["sampler"] == "ddpm" and DDPM_SAMPLE["cpu"]["sampler"] == "ddim"
    assert DCGAN_TRAIN["gpu"] == {"steps": 8000, "width": 64, "batch_size": 128, "lr": 2e-4,
                                  "save_every": 1000}
    assert DDPM_TRAIN["cpu"]["width"] < DDPM_TRAIN["gpu"]["width"]
    assert DCGAN_TRAIN["cpu"]["width"] < DCGAN_TRAIN["gpu"]["width"]


def test_unet_without_attention_and_old_checkpoints_keep_it():
    with_attention, without = UNet(width=8, blocks=1), UNet(width=8, blocks=1, attention=False)
    names = {type(m).__name__ for m in without.modules()}
    assert "SelfAttention" not in names
    assert sum(p.numel() for p in without.parameters()) < sum(
        p.numel() for p in with_attention.parameters())
    legacy = build_model({"width": 8, "blocks": 1})  # a checkpoint from before the switch
    assert legacy.state_dict().keys() == with_attention.state_dict().keys()


def _cli(args):
    result = CliRunner().invoke(reference_cli, [*args, "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    return result.output


TINY_CLI = ["--width", "8", "--blocks", "1", "--batch-size", "16", "--limit", "256",
            "--timesteps", "40"]


def test_cpu_preset_trains_resumes_and_samples_with_ddim(mnist_dir, tmp_path):
    out = tmp_path / "ddpm"
    base = ["ddpm", "train", "--data", str(mnist_dir), "--out", str(out), "--preset", "cpu",
            *TINY_CLI]
    _cli([*base, "--steps", "2"])
    first = load_checkpoint(out, "ddpm")
    config = first["config"]
    assert config["preset"] == "cpu"
    cpu = DDPM_TRAIN["cpu"]
    assert (config["lr"], config["ema_decay"]) == (cpu["lr"], cpu["ema_decay"])
    assert config["width"] == 8 and config["attention"] is cpu["attention"]
    assert first["clock"]["cpu_s"] > 0 and first["clock"]["wall_s"] > 0

    _cli([*base, "--steps", "4"])  # resumes with the same preset
    resumed = load_checkpoint(out, "ddpm")
    assert resumed["step"] == 4 and [s for s, _ in resumed["losses"]] == [1, 2, 3, 4]
    assert resumed["clock"]["cpu_s"] > first["clock"]["cpu_s"]  # carried across the resume

    refused = CliRunner().invoke(reference_cli, [
        "ddpm", "train", "--data", str(mnist_dir), "--out", str(out), *TINY_CLI,
        "--steps", "6", "--device", "cpu", "--quiet"])  # the gpu preset: other lr, EMA, ...
    assert refused.exit_code != 0 and "cannot resume" in refused.output

    # sampling follows the checkpoint's preset: DDIM (T = 40 here, so fewer DDIM steps)
    output = _cli(["ddpm", "sample", "--checkpoint", str(out), "--output", str(tmp_path / "a"),
                   "--num", "3", "--ddim-steps", "10"])
    assert "sampler: ddim, 10 steps, eta 0" in output
    again = _cli(["ddpm", "sample", "--checkpoint", str(out), "--output", str(tmp_path / "b"),
                  "--num", "3", "--preset", "cpu", "--ddim-steps", "10"])
    assert "ddim" in again
    for name in ("00001.png", "00002.png", "00003.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ancestral = _cli(["ddpm", "sample", "--checkpoint", str(out), "--output",
                      str(tmp_path / "c"), "--num", "3", "--preset", "gpu"])
    assert "sampler: ddpm ancestral, 40 steps" in ancestral
    too_many = CliRunner().invoke(reference_cli, [
        "ddpm", "sample", "--checkpoint", str(out), "--output", str(tmp_path / "d"),
        "--num", "1", "--device", "cpu", "--quiet"])  # the preset's 50 DDIM steps > T = 40
    assert too_many.exit_code != 0 and "DDIM steps" in too_many.output


def test_cpu_preset_hw3_submission_uses_ddim_and_the_full_process_grid(mnist_dir, tmp_path):
    out = tmp_path / "ddpm"
    _cli(["ddpm", "train", "--data", str(mnist_dir), "--out", str(out), "--preset", "cpu",
          "--width", "8", "--blocks", "1", "--batch-size", "16", "--limit", "256",
          "--steps", "2"])  # T = 1000: the preset's 50 DDIM steps apply
    model, schedule = load_sampler(out, torch.device("cpu"))
    output = _cli(["ddpm", "hw3-submission", "--checkpoint", str(out), "--out",
                   str(tmp_path / "hw3"), "--student-id", "0123456", "--num", "4"])
    assert "images:" in output
    with zipfile.ZipFile(tmp_path / "hw3" / "0123456.zip") as archive:
        assert archive.namelist() == [f"{i:05d}.png" for i in range(1, 5)]
    direct = sample_ddpm(out, tmp_path / "direct", 4, 0, sampler="ddim", ddim_steps=50, eta=0.0,
                         device="cpu", progress=False)
    assert direct["sampler"] == "ddim, 50 steps, eta 0"
    for i in range(1, 5):
        name = f"{i:05d}.png"
        assert (tmp_path / "hw3" / "images" / name).read_bytes() == (
            tmp_path / "direct" / name).read_bytes()
    # the process grid is the 1,000-step ancestral chain, whatever sampled the images
    grid = np.asarray(_png(tmp_path / "hw3" / "0123456_process.png"))
    tiles = process_tiles(model, schedule, seed=0).permute(0, 2, 3, 1).numpy()
    assert grid.shape == (242, 242, 3)
    assert np.array_equal(grid[2:30, 2:30], tiles[0])  # sample 0 at t = 1000
    assert np.array_equal(grid[2:30, 212:240], tiles[7])  # sample 0 at t = 0


def test_dcgan_cpu_preset(faces_zip, tmp_path):
    _cli(["dcgan", "train", "--data", str(faces_zip), "--out", str(tmp_path / "gan"),
          "--preset", "cpu", "--width", "8", "--batch-size", "4", "--limit", "8", "--steps", "1"])
    state = load_checkpoint(tmp_path / "gan", "dcgan")
    assert state["config"]["width"] == 8 and state["config"]["lr"] == DCGAN_TRAIN["cpu"]["lr"]
    assert state["step"] == 1 and state["clock"]["cpu_s"] > 0
