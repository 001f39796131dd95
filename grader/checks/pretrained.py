"""Code that loads published (pretrained) weights, found in the syntax trees of code_units.py.

Seen as: ``X.from_pretrained(...)``; ``torch.hub.load`` and the URL loaders
(``load_state_dict_from_url``, ``torch.utils.model_zoo.load_url``); ``pretrained=True``;
a non-None ``weights=`` that names published weights (a torchvision ``*_Weights`` value, a
weights name given to a ``torchvision.models`` builder, ``"imagenet"``); a Keras application
built without ``weights=None`` (its default is ImageNet); a URL ending in a weights extension.

A false flag costs an honest student points, a miss only leaves the TA's manual check, so the
rules stay narrow: calls of the student's own functions, classes and methods (defined in the
zip, imported from its modules, or a method name the zip defines called on an object whose
type is unknown) are never flagged, ``weights=None`` and a ``weights=`` variable are not, and
Inception, the network FID and IS are computed with (what the course's own FID tool loads),
is not.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass

from grader.checks.code_units import CodeUnit, ParsedCode
from grader.findings import Finding, compact_list, error

LOCAL = "<local>"  # the root of names imported from the student's own modules
HUB_LOADERS = frozenset(
    {
        "torch.hub.load",
        "torch.hub.load_state_dict_from_url",
        "torch.utils.model_zoo.load_url",
        "torchvision.models.utils.load_state_dict_from_url",
        "torchvision._internally_replaced_utils.load_state_dict_from_url",
    }
)
URL_LOADER_NAMES = frozenset({"load_state_dict_from_url"})
TORCHVISION_MODELS = "torchvision.models"
KERAS_APPLICATIONS = ("keras.applications", "tensorflow.keras.applications")
PRETRAINED_FLAGS = ("pretrained", "pretrained_backbone")
WEIGHTS_ARGS = ("weights", "weights_backbone")
WEIGHT_URL = re.compile(
    r"(?:https?|ftp|s3|gs|hf)://\S+\.(?:pt|pth|ckpt|safetensors|bin|h5|hdf5|onnx|pb|tflite|keras"
    r"|msgpack|params|caffemodel|weights)(?![\w.])(?:[?#]\S*)?",
    re.IGNORECASE,
)
EVALUATION_NETWORKS = ("inception",)  # FID / IS networks: evaluation, not the student's model
MAX_SHOWN = 90  # characters of a call shown in a finding


@dataclass(frozen=True)
class Seen:
    path: str
    where: str  # 'train.py line 12'
    what: str  # the call or URL, shortened


def _aliases(trees: list[ast.Module], local_modules: set[str]) -> dict[str, str]:
    """Name bound by an import -> the dotted name it stands for (LOCAL.* for the student's)."""
    out: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        out[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        out[top] = top
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level > 0 or module.split(".")[0] in local_modules:
                    module = f"{LOCAL}.{module}".rstrip(".")
                for alias in node.names:
                    if alias.name != "*":
                        out[alias.asname or alias.name] = f"{module}.{alias.name}"
    return out


def _defined_names(trees: list[ast.Module]) -> set[str]:
    """Every function, method and class name the student's code defines."""
    return {
        node.name
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


class _Resolver:
    def __init__(self, aliases: dict[str, str], defined: set[str], local_modules: set[str]):
        self.aliases, self.defined, self.local_modules = aliases, defined, local_modules

    def root(self, expr: ast.expr) -> str | None:
        while isinstance(expr, (ast.Attribute, ast.Call, ast.Subscript)):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    def dotted(self, expr: ast.expr) -> str | None:
        """torch.hub.load for `hub.load` after `from torch import hub`; None when unknown."""
        if isinstance(expr, ast.Name):
            return self.aliases.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.dotted(expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def imported(self, expr: ast.expr) -> bool:
        """The callee is reached through an import of a package (not the student's own)."""
        root = self.root(expr)
        dotted = self.dotted(expr)
        return root in self.aliases and dotted is not None and not self._local_name(dotted)

    def _local_name(self, dotted: str) -> bool:
        return dotted.startswith(LOCAL) or dotted.split(".")[0] in self.local_modules

    def own(self, func: ast.expr) -> bool:
        """The call is of the student's own code: a function or class the zip defines or
        imports from its modules, or a method whose name the zip defines, called on an object
        that is not an imported package."""
        if self.imported(func):
            return False
        root = self.root(func)
        dotted = self.dotted(func)
        if dotted is not None and root in self.aliases and self._local_name(dotted):
            return True
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name in self.defined or (root is not None and root in self.defined)


def _shown(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _is_evaluation_network(text: str) -> bool:
    low = text.lower()
    return any(n in low for n in EVALUATION_NETWORKS)


def _names_weights_enum(value: ast.expr) -> bool:
    """A torchvision weights enum anywhere in the value: ResNet18_Weights.DEFAULT, ..."""
    for node in ast.walk(value):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        if name.endswith("_Weights"):
            return True
    return False


def _call_loads_weights(call: ast.Call, r: _Resolver) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    dotted = r.dotted(func) or ""
    if r.own(func):
        return False
    if name == "from_pretrained":
        return True
    if dotted in HUB_LOADERS or name in URL_LOADER_NAMES:
        return True
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    for flag in PRETRAINED_FLAGS:
        value = keywords.get(flag)
        if isinstance(value, ast.Constant) and value.value is True:
            return True
    for arg in WEIGHTS_ARGS:
        value = keywords.get(arg)
        if value is None or (isinstance(value, ast.Constant) and value.value in (None, False)):
            continue
        if _names_weights_enum(value):
            return True
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if value.value.lower() == "imagenet":
                return True
            if r.imported(func) and dotted.startswith(TORCHVISION_MODELS + "."):
                return True  # weights="DEFAULT", "IMAGENET1K_V1" ...
    if r.imported(func) and dotted.startswith(tuple(p + "." for p in KERAS_APPLICATIONS)):
        builder = dotted.rsplit(".", 1)[-1]
        if builder[:1].isupper() and "weights" not in keywords:
            return True  # ResNet50() loads ImageNet weights unless weights=None
    return False


def _seen_in(unit: CodeUnit, r: _Resolver) -> list[Seen]:
    seen = []
    # Docstrings and bare strings are prose, not code that loads anything.
    prose = {
        id(n.value)
        for n in ast.walk(unit.tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    for node in ast.walk(unit.tree):
        if isinstance(node, ast.Call) and _call_loads_weights(node, r):
            text = _shown(node)
            if not _is_evaluation_network(text):
                seen.append(Seen(unit.path, unit.where(node.lineno), text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            for match in WEIGHT_URL.finditer(node.value):
                url = match.group(0)
                if not _is_evaluation_network(url.rsplit("/", 1)[-1]):
                    seen.append(Seen(unit.path, unit.where(node.lineno), url))
    return seen


def find_pretrained(parsed: ParsedCode) -> list[Seen]:
    """Every place the code loads published weights, in file order."""
    by_file: dict[str, list[CodeUnit]] = defaultdict(list)
    for unit in parsed.units:
        by_file[unit.path].append(unit)
    defined = _defined_names([u.tree for u in parsed.units])
    seen: list[Seen] = []
    for units in by_file.values():  # a notebook's imports reach all of its cells
        r = _Resolver(_aliases([u.tree for u in units], parsed.local_modules), defined, parsed.local_modules)
        for unit in units:
            seen += _seen_in(unit, r)
    first: dict[str, Seen] = {}  # one per place: a weights URL inside a flagged call is that call
    for s in seen:
        first.setdefault(s.where, s)
    return list(first.values())


def check_pretrained(parsed: ParsedCode, *, artifact: str | None = None) -> list[Finding]:
    seen = find_pretrained(parsed)
    if not seen:
        return []
    return [
        error(
            "source.pretrained_weights",
            f"the code loads published weights: {compact_list([f'{s.where}: {s.what}' for s in seen], 4)}",
            artifact=artifact,
            path=seen[0].path,
        )
    ]
