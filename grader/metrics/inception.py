"""The FID InceptionV3 of each course tool, built offline from a local weights file.

Both official packages build their network with `fid_inception_v3()`, which fetches the
weights with `load_state_dict_from_url(FID_WEIGHTS_URL)` (a download unless the file is
in the torch hub cache). We construct their own `InceptionV3` class unchanged and hand it
our state dict at that call instead, so no download can happen and the network, resize
(bilinear to 299, align_corners=False) and normalisation (2x - 1) stay theirs.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from grader.errors import GraderError

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILENAME
)
WEIGHTS_ENV = "GRADER_INCEPTION_WEIGHTS"
OFFLINE_ENV = "GRADER_OFFLINE"
FEATURE_DIMS = 2048
RESIZE_MODE = "bilinear to 299x299, align_corners=False"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Backend:
    name: str  # the PyPI distribution, as in rubrics and provenance
    module: str  # the package whose .inception module defines InceptionV3


BACKENDS = {
    "pytorch-gan-metrics": Backend("pytorch-gan-metrics", "pytorch_gan_metrics"),
    "pytorch-fid": Backend("pytorch-fid", "pytorch_fid"),
}
BACKEND_NAMES = tuple(BACKENDS)  # the first is the default
DEFAULT_BACKEND = BACKEND_NAMES[0]


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise GraderError(
            f"unknown FID backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None


def backend_version(backend: Backend) -> str:
    return metadata.version(backend.name)


def resolve_device(device: str | None = None):
    """The torch device to run on: `device` as given ('cpu', 'cuda', 'cuda:1'; None or
    'auto': CUDA when present, else the CPU), checked to exist on this machine."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise GraderError(f"--device {device!r}: not a torch device ({exc})") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GraderError(f"--device {device}: CUDA is not available on this machine")
    return resolved


# ---------------------------------------------------------------------------------------
# Weights resolution


def _hub_candidates() -> list[Path]:
    import torch

    candidates = []
    if os.environ.get("TORCH_HOME"):
        candidates.append(Path(os.environ["TORCH_HOME"]).expanduser() / "hub" / "checkpoints")
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints")
    unique = []
    for folder in candidates:
        if folder / WEIGHTS_FILENAME not in unique:
            unique.append(folder / WEIGHTS_FILENAME)
    return unique


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _missing_message(reason: str) -> str:
    places = "\n".join(f"  - {p}" for p in _hub_candidates())
    return (
        f"FID Inception weights not found ({reason}). Put the file {WEIGHTS_FILENAME} "
        f"(from {WEIGHTS_URL}) in one of these places:\n"
        f"  - a path given with --inception-weights PATH\n"
        f"  - a path named by the environment variable {WEIGHTS_ENV}\n"
        f"{places}\n"
        f"(online, with {OFFLINE_ENV} unset, it is downloaded once into the last place)"
    )


def resolve_weights(
    explicit: Path | str | None = None, *, download: bool | None = None, url: str = WEIGHTS_URL
) -> Path:
    """The FID Inception weights file to use.

    Order: `explicit` (--inception-weights), $GRADER_INCEPTION_WEIGHTS, the torch hub
    cache ($TORCH_HOME/hub/checkpoints, torch.hub.get_dir()), then, unless offline
    (download=False or $GRADER_OFFLINE set), one download into the hub cache.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise GraderError(f"--inception-weights {path}: no such file")
        return path
    configured = os.environ.get(WEIGHTS_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise GraderError(f"{WEIGHTS_ENV}={configured}: no such file")
        return path
    candidates = _hub_candidates()
    for path in candidates:
        if path.is_file():
            return path
    if download is None:
        download = not _offline()
    if not download:
        raise GraderError(_missing_message(f"offline: {OFFLINE_ENV} is set"))
    return _download(url, candidates[-1])


def _download(url: str, destination: Path) -> Path:
    import torch

    destination.parent.mkdir(parents=True, exist_ok=True)
    # torch.hub checks that the file's sha256 starts with the hash in its name.
    prefix = WEIGHTS_FILENAME.rsplit("-", 1)[-1].split(".")[0] if url == WEIGHTS_URL else None
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib waits forever on a dead link
    try:
        torch.hub.download_url_to_file(url, str(destination), hash_prefix=prefix, progress=False)
    except Exception as exc:  # urllib, socket, hash mismatch: all mean "not available"
        raise GraderError(_missing_message(f"download from {url} failed: {exc}")) from exc
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return destination


# ---------------------------------------------------------------------------------------
# Model construction

_BUILD_LOCK = threading.Lock()


def load_state_dict(weights: Path) -> dict:
    import torch

    try:
        state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/format errors of a file that is not a state dict
        raise GraderError(f"{weights}: not a PyTorch state dict: {exc}") from exc
    if not isinstance(state_dict, dict):
        raise GraderError(f"{weights}: expected a state dict, found {type(state_dict).__name__}")
    return state_dict


@contextlib.contextmanager
def _serve_state_dict(module, state_dict: dict):
    """Answer the module's `load_state_dict_from_url(FID_WEIGHTS_URL)` with our state dict."""
    original = module.load_state_dict_from_url
    expected_url = module.FID_WEIGHTS_URL

    def load_state_dict_from_url(url, *args, **kwargs):
        if url != expected_url:
            raise GraderError(f"{module.__name__} asked for unexpected weights {url}")
        return state_dict

    module.load_state_dict_from_url = load_state_dict_from_url
    try:
        yield
    finally:
        module.load_state_dict_from_url = original


def build_inception(backend: Backend, state_dict: dict):
    """The backend's own InceptionV3 (pool3 block, 2048-d), in eval mode, on the CPU."""
    module = importlib.import_module(f"{backend.module}.inception")
    block = module.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIMS]
    with _BUILD_LOCK, _serve_state_dict(module, state_dict):
        try:
            model = module.InceptionV3([block])
        except RuntimeError as exc:  # load_state_dict: missing/unexpected keys, bad shapes
            raise GraderError(
                f"the weights do not fit {backend.name}'s FID InceptionV3: {exc}"
            ) from exc
    return model.eval()


def fold_batchnorm(model):
    """Fold each eval-mode BatchNorm into the convolution before it, in place.

    torchvision's BasicConv2d computes relu(bn(conv(x))); with bn folded into conv's
    weights and bias (torch.nn.utils.fusion) and bn replaced by Identity it computes the
    same function in one pass instead of two. On a CPU (channels_last, one thread) that
    was ~8% more images per CPU-second; features equal to ~2e-6 relative (float32
    rounding), FID to ~1e-6 relative, far inside the 1e-4 parity bound, so it is the
    default (off: --no-fold-batchnorm or GRADER_FID_FOLD_BATCHNORM=0).
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.models.inception import BasicConv2d

    for unit in model.modules():
        if isinstance(unit, BasicConv2d) and isinstance(unit.bn, torch.nn.BatchNorm2d):
            unit.conv = fuse_conv_bn_eval(unit.conv, unit.bn)
            unit.bn = torch.nn.Identity()
    return model
