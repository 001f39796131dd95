"""Source code: a zip or folder with a readme and code, and no weights or data sets (HW3).

Optional rules read the code itself (parsed, never run): the packages it may import
(`allowed_imports`), no published weights (`forbid_pretrained`), no notebooks (`notebooks:
forbid`, HW9 wants .py files).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from grader.artifacts.base import (
    CONTAINER_WORDS,
    JUNK_WORDS,
    ArtifactBase,
    ArtifactKind,
    CheckedArtifact,
    CheckRequest,
)
from grader.files import format_bytes
from grader.findings import compact_list
from grader.intake.unpack import open_container


class SourceArtifact(ArtifactBase):
    kind: Literal["source"]
    # Empty: no readme asked for.
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
    # Package (as the assignment names it) -> its import names, e.g. opencv-python: [cv2];
    # a package imported under its own name may be given with no value. None: any import.
    # The standard library and the student's own modules are always allowed.
    allowed_imports: dict[str, list[str]] | None = None
    forbid_pretrained: bool = False  # flag code that loads published weights
    notebooks: Literal["allow", "forbid"] = "allow"

    @field_validator("allowed_imports", mode="before")
    @classmethod
    def _import_names(cls, value):
        if not isinstance(value, dict):
            return value
        return {
            str(package): [str(package)] if names is None else [names] if isinstance(names, str) else names
            for package, names in value.items()
        }


class SourceKind(ArtifactKind):
    kind = "source"
    model = SourceArtifact

    def fit(self, item, contents) -> float:
        if not contents.is_bundle or contents.code == 0:
            return 0
        return 1 + contents.code / max(len(contents.names), 1)

    def rules(self, spec: SourceArtifact) -> list[str]:
        rules = [
            f"code ({compact_list(spec.code, first=3)}) {CONTAINER_WORDS[spec.container]}",
        ]
        if spec.readme:
            rules.append(f"a readme ({compact_list(spec.readme, first=3)})")
        if spec.notebooks == "forbid":
            rules.append("no notebooks (.ipynb)")
        if spec.allowed_imports is not None:
            rules.append(f"imports only from {compact_list(sorted(spec.allowed_imports), first=4)} "
                         "and the standard library")
        if spec.forbid_pretrained:
            rules.append("no pretrained weights")
        if spec.forbid:
            rules.append(f"no weights or data ({compact_list(spec.forbid, first=4)})")
        if spec.max_bytes is not None:
            rules.append(f"at most {format_bytes(spec.max_bytes)}")
        if spec.forbid_junk:
            rules.append(JUNK_WORDS)
        return rules

    def check(self, spec: SourceArtifact, request: CheckRequest, result) -> CheckedArtifact:
        from grader.checks.source import check_loose_notebook, check_source

        if spec.notebooks == "forbid" and request.item.is_file() and request.item.suffix.lower() == ".ipynb":
            return CheckedArtifact(result=result, findings=check_loose_notebook(request.shown, artifact=request.name))
        unpacked = open_container(request, flat=False, forbid_junk=spec.forbid_junk)
        checked = CheckedArtifact(result=result, findings=list(unpacked.findings))
        if not unpacked.fatal:
            checked.findings += check_source(unpacked.root, unpacked.files, spec, artifact=request.name)
            checked.root = unpacked.root
            result.count = len(unpacked.files)
        return checked
