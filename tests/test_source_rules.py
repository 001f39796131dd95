"""The source-code rules that read the code (parsed with ast, never run): HW3's package white
list and no pretrained weights, HW9's no notebooks. Real zips through the source artifact's
own check (unpacking included), with the shipped rubrics' settings; one case end to end
through `grader check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.artifacts import KINDS, CheckRequest
from grader.results import ArtifactResult
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
HW3 = load_rubric(ROOT / "rubrics" / "hw3.yaml")
HW9 = load_rubric(ROOT / "rubrics" / "hw9.yaml")
README = "# HW3\npip install torch torchvision; python train.py\n"


def notebook(*cells: str, markdown: str = "# notes") -> str:
    """An nbformat-4 notebook: a markdown cell, then one code cell per string."""
    code = [{"cell_type": "code", "source": c.splitlines(keepends=True), "metadata": {},
             "outputs": [], "execution_count": None} for c in cells]
    body = {"cells": [{"cell_type": "markdown", "source": [markdown], "metadata": {}}, *code],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(body, indent=1)


def source_zip(path: Path, files: dict[str, str], readme: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        if readme:
            zf.writestr("README.md", README)
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def check(tmp_path: Path, files: dict[str, str] | None = None, rubric=HW3, *, item: Path | None = None):
    """Findings of the rubric's `source` artifact on a zip of `files` (or on `item`)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    item = item or source_zip(tmp_path / "0812345_code.zip", files or {})
    spec = rubric.artifacts["source"]
    result = ArtifactResult(name="source", kind="source", status="ok")
    request = CheckRequest(name="source", item=item, shown=item.name, work=tmp_path / "work",
                           limits=rubric.limits)
    return KINDS["source"].check(spec, request, result).findings


def codes(findings) -> list[str]:
    return [f.code for f in findings]


WHITELISTED = """\
import argparse, os, json
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
import torchvision
from torchvision import transforms
from torchvision.utils import make_grid, save_image
from PIL import Image
from tqdm import tqdm
import cv2
import pandas as pd
from sklearn.decomposition import PCA
import click, xgboost, tensorboardX
import tensorflow as tf
import keras
import jax.numpy as jnp
import mxnet
from pytorch_gan_metrics import get_fid
"""


def test_whitelisted_imports_pass(tmp_path):
    files = {"train.py": WHITELISTED, "sample.py": "from __future__ import annotations\nimport sys\n"}
    assert check(tmp_path, files) == []


def test_forbidden_import_in_a_file_and_a_notebook_cell_names_file_line_and_package(tmp_path):
    findings = check(tmp_path, {
        "train.py": "import torch\n\nimport diffusers\n",
        "explore.ipynb": notebook("%matplotlib inline\nimport torch", "x = 1\nfrom diffusers import UNet2DModel"),
        "eval.py": "import matplotlib.pyplot as plt\n",
    })
    assert codes(findings) == ["source.forbidden_import", "source.forbidden_import"]
    diffusers, matplotlib = findings
    # One finding per package; every place is named (file, notebook cell, line).
    assert diffusers.message.startswith("'diffusers' is imported (explore.ipynb cell 3 line 2, train.py line 3)")
    assert diffusers.path == "explore.ipynb" and diffusers.severity.value == "error"
    assert "eval.py line 1" in matplotlib.message and "'matplotlib'" in matplotlib.message
    # The fix lists the handout's packages (import names where they differ are the rubric's).
    for package in ("PyTorch", "torchvision", "TensorFlow", "Keras", "JAX", "MXNet", "scikit-learn",
                    "xgboost", "pandas", "click", "tqdm", "tensorboard", "tensorboardX", "opencv-python"):
        assert package in diffusers.fix
    assert "standard library" in diffusers.fix and "your own modules" in diffusers.fix


def test_the_students_own_modules_and_relative_imports_pass(tmp_path):
    files = {
        "src/train.py": "from .model import UNet\nfrom . import utils\nimport model\nfrom nets.blocks import Down\n",
        "src/model.py": "import torch.nn as nn\nclass UNet(nn.Module):\n    pass\n",
        "src/utils.py": "",
        "src/nets/__init__.py": "",
        "src/nets/blocks.py": "import torch\nclass Down: pass\n",
        "run.ipynb": notebook("%%writefile helpers.py\nimport os\n", "import helpers\nfrom src import model"),
    }
    assert check(tmp_path, files) == []


def test_optional_and_dynamic_imports(tmp_path):
    files = {
        "train.py": (
            "try:\n    import wandb\nexcept ImportError:\n    wandb = None\n"  # optional: runs without it
            "import importlib\nlib = importlib.import_module('diffusers')\n"  # counted like an import
        )
    }
    (finding,) = check(tmp_path, files)
    assert finding.code == "source.forbidden_import" and "'diffusers'" in finding.message
    assert "wandb" not in finding.message


def test_code_that_does_not_parse_is_its_own_finding(tmp_path):
    findings = check(tmp_path, {
        "train.py": "import torch\ndef train(:\n    pass\n",
        "nb.ipynb": notebook("import torch", "for i in range(3):\n    print(i\n"),
        "broken.ipynb": "{not json",
        "ok.py": "import diffusers\n",
    })
    assert sorted(codes(findings)) == ["source.forbidden_import"] + ["source.unparsable"] * 3
    unparsable = {f.path: f for f in findings if f.code == "source.unparsable"}
    assert "line 2" in unparsable["train.py"].message and "Python 3." in unparsable["train.py"].message
    assert "cell 3 line 2" in unparsable["nb.ipynb"].message
    assert "not a notebook" in unparsable["broken.ipynb"].message
    # A warning: the TA sees what was not read; the rest of the zip is still checked.
    assert {f.severity.value for f in unparsable.values()} == {"warning"}


def test_ipython_magics_and_shell_lines_in_cells_are_skipped(tmp_path):
    nb = notebook(
        "!pip install tqdm\n%load_ext autoreload\nimport torch\nfiles = !ls\ntorch.nn.Conv2d?\n",
        "%%bash\npip install diffusers\n",  # not Python: skipped
        "%%time\nx = 10 % 3\nimport numpy as np\n",
    )
    assert check(tmp_path, {"hw.ipynb": nb}) == []


@pytest.mark.parametrize(
    "code",
    [
        "from torchvision.models import resnet18\nnet = resnet18(weights=None)\n",
        "import torchvision\nnet = torchvision.models.resnet18(pretrained=False)\n",
        "import numpy as np\nm = np.average([1, 2], weights=[3, 4])\n",
        "from torch.utils.data import WeightedRandomSampler\ns = WeightedRandomSampler(weights=w, num_samples=9)\n",
        # The student's own from_pretrained, as a function and as a classmethod.
        "def from_pretrained(path):\n    return torch.load(path)\nnet = from_pretrained('ckpt/ddpm.pt')\n",
        (
            "import torch\nclass UNet(torch.nn.Module):\n    @classmethod\n    def from_pretrained(cls, path):\n"
            "        return cls()\nnet = UNet.from_pretrained('ckpt/unet.pt')\nema = model.from_pretrained('x')\n"
        ),
        # ...and their own builder with a pretrained flag.
        "def build(pretrained=False):\n    return None\nnet = build(pretrained=True)\n",
        # Inception for FID / IS is what the course's own FID tool loads.
        "import torchvision\nnet = torchvision.models.inception_v3(pretrained=True)\n",
        '"""Trained from scratch, unlike https://example.org/ddpm/model.pth."""\nimport torch\n',
        "import torch\ntorch.save(net.state_dict(), 'checkpoints/unet.pth')\n",
    ],
)
def test_no_false_pretrained_flags(tmp_path, code):
    assert check(tmp_path, {"train.py": code}) == []


def test_a_student_module_defining_from_pretrained_is_not_flagged(tmp_path):
    files = {
        "model.py": "class DDPM:\n    @classmethod\n    def from_pretrained(cls, path):\n        return cls()\n",
        "sample.py": "from model import DDPM\nddpm = DDPM.from_pretrained('runs/last.pt')\n",
        "eval.ipynb": notebook("from model import DDPM", "d = DDPM.from_pretrained('runs/best.pt')"),
    }
    assert check(tmp_path, files) == []


@pytest.mark.parametrize(
    ("code", "seen"),
    [
        ("import torchvision\nnet = torchvision.models.resnet18(pretrained=True)\n",
         "train.py line 2: torchvision.models.resnet18(pretrained=True)"),
        ("import torch\nnet = torch.hub.load('pytorch/vision', 'resnet18')\n",
         "train.py line 2: torch.hub.load('pytorch/vision', 'resnet18')"),
        ("from torch import hub\nsd = hub.load_state_dict_from_url(URL)\n",
         "train.py line 2: hub.load_state_dict_from_url(URL)"),
        ("from torchvision.models import resnet18, ResNet18_Weights\nnet = resnet18(weights=ResNet18_Weights.DEFAULT)",
         "train.py line 2: resnet18(weights=ResNet18_Weights.DEFAULT)"),
        ("from torchvision import models\nnet = models.vgg16(weights='IMAGENET1K_V1')\n",
         "train.py line 2: models.vgg16(weights='IMAGENET1K_V1')"),
        ("from diffusers import UNet2DModel\nunet = UNet2DModel.from_pretrained('google/ddpm-cifar10-32')\n",
         "train.py line 2: UNet2DModel.from_pretrained('google/ddpm-cifar10-32')"),
        ("import tensorflow as tf\nbase = tf.keras.applications.ResNet50(include_top=False)\n",
         "train.py line 2: tf.keras.applications.ResNet50(include_top=False)"),
        ("CKPT = 'https://huggingface.co/org/ddpm/resolve/main/diffusion_pytorch_model.safetensors'\n",
         "train.py line 1: https://huggingface.co/org/ddpm/resolve/main/diffusion_pytorch_model.safetensors"),
    ],
)
def test_pretrained_weights_are_flagged_with_what_and_where(tmp_path, code, seen):
    findings = check(tmp_path, {"train.py": code})
    weights = [f for f in findings if f.code == "source.pretrained_weights"]
    assert len(weights) == 1 and weights[0].path == "train.py", findings
    assert weights[0].message == f"the code loads published weights: {seen}"


def test_pretrained_in_a_notebook_and_a_student_def_elsewhere(tmp_path):
    # The zip defines its own from_pretrained, but this call's receiver is imported from a package.
    files = {
        "mine.py": "def from_pretrained(p):\n    return p\n",
        "hw.ipynb": notebook("from transformers import AutoModel", "m = AutoModel.from_pretrained('gpt2')"),
    }
    findings = [f for f in check(tmp_path, files) if f.code == "source.pretrained_weights"]
    assert [f.message for f in findings] == [
        "the code loads published weights: hw.ipynb cell 3 line 1: AutoModel.from_pretrained('gpt2')"
    ]


def test_hw9_notebooks_are_a_finding_whose_fix_converts_them(tmp_path):
    findings = check(tmp_path, {"hw9.ipynb": notebook("import torch")}, HW9)
    # The notebook is the one problem: no "no source files" on top of it.
    assert codes(findings) == ["source.notebook"]
    assert "jupyter nbconvert --to script \"hw9.ipynb\"" in findings[0].fix and "hw9.py" in findings[0].fix
    assert check(tmp_path / "py", {"dcgan.py": "import torch\n", "fid.py": "import pytorch_fid\n"}, HW9) == []
    # Handed in loose, not zipped: the same finding.
    loose = tmp_path / "hw9.ipynb"
    loose.write_text(notebook("import torch"))
    assert codes(check(tmp_path, rubric=HW9, item=loose)) == ["source.notebook"]
    # HW3 accepts notebooks (and reads their cells).
    assert check(tmp_path / "hw3", {"train.ipynb": notebook("import torch")}) == []


def test_grader_check_reports_the_rules_end_to_end(tmp_path):
    sub = tmp_path / "0812345"
    sub.mkdir()
    source_zip(sub / "0812345_code.zip", {
        "train.py": "import torch\nfrom diffusers import DDPMPipeline\n"
                    "pipe = DDPMPipeline.from_pretrained('google/ddpm-cifar10-32')\n",
    })
    env = {**os.environ, "NO_COLOR": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(sub / "0812345_code.zip"), "--rubric",
         str(ROOT / "rubrics" / "hw3.yaml"), "--no-metrics", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert res.returncode == 1, res.stderr
    found = {f["code"]: f for f in json.loads(res.stdout)["findings"]}
    assert "train.py line 2" in found["source.forbidden_import"]["message"]
    assert "train.py line 3" in found["source.pretrained_weights"]["message"]
