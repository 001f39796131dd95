"""Source code: a zip or folder with a readme and code, and no weights or data sets (HW3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.artifacts.base import ArtifactBase, ArtifactKind, CheckedArtifact, CheckRequest
from grader.intake.unpack import open_container


class SourceArtifact(ArtifactBase):
    kind: Literal["source"]
    readme: list[str] = Field(
        default_factory=lambda: ["readme*.md", "readme*.txt", "readme*.pdf", "readme"]
    )
    code: list[str] = Field(default_factory=lambda: ["*.py", "*.ipynb"])
    # Weights and data sets are not allowed in a source zip (HW3).
    forbid: list[str] = Field(
        default_factory=lambda: [
            "*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.bin", "*.h5", "*.onnx", "*.npz", "*.npy",
            "*-ubyte", "*-ubyte.gz", "*.idx3-ubyte", "*.pkl", "*.tar", "*.tar.gz", "*.zip",
        ]
    )
    max_bytes: int | None = Field(50 * 1024**2, gt=0)
    forbid_junk: bool = True


class SourceKind(ArtifactKind):
    kind = "source"
    model = SourceArtifact

    def fit(self, item, contents) -> float:
        if not contents.is_bundle or contents.code == 0:
            return 0
        return 1 + contents.code / max(len(contents.names), 1)

    def check(self, spec: SourceArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.source import check_source

        unpacked = open_container(request, flat=False, forbid_junk=spec.forbid_junk)
        checked = CheckedArtifact(result=result, findings=list(unpacked.findings))
        if not unpacked.fatal:
            checked.findings += check_source(unpacked.root, unpacked.files, spec, artifact=request.name)
            checked.root = unpacked.root
            result.count = len(unpacked.files)
        return checked
