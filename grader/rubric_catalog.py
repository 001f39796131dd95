"""The course rubrics shipped with grader, found by name from anywhere: `--rubric hw3`.

They live in the repository's top-level rubrics/ folder, which an install ships as the package
`grader.rubrics` (setup.py maps the folder). A path that exists always wins over a name. TA
files named in a shipped rubric (statistics, evaluator weights, label files) are not shipped:
they are looked for in the folder given by --ta-dir or $GRADER_TA_DIR, else in the current
folder; a rubric given by path finds them beside itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grader.errors import RubricError

TA_DIR_ENV = "GRADER_TA_DIR"


def _shipped_folder() -> Path | None:
    import grader

    checkout = Path(grader.__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "rubrics").is_dir():
        return checkout / "rubrics"  # a source checkout (or an editable install of one)
    try:
        from importlib import resources

        folder = Path(str(resources.files("grader.rubrics")))
    except (ModuleNotFoundError, TypeError):
        return None
    return folder if folder.is_dir() else None


def shipped_rubrics() -> dict[str, Path]:
    """name -> file of every shipped course rubric."""
    folder = _shipped_folder()
    if folder is None:
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


@dataclass(frozen=True)
class RubricSource:
    path: Path  # the YAML file
    name: str | None  # the shipped name, when found by name
    ta_dir: Path | None  # where its relative TA file paths point (None: beside the file)


def ta_dir_setting(explicit: Path | str | None = None) -> tuple[Path | None, str]:
    """(folder, where it came from) for a shipped rubric's TA files."""
    if explicit is not None:
        return Path(explicit), "--ta-dir"
    if os.environ.get(TA_DIR_ENV):
        return Path(os.environ[TA_DIR_ENV]), f"${TA_DIR_ENV}"
    return None, "the current folder"


def find_rubric(spec: Path | str, ta_dir: Path | str | None = None) -> RubricSource:
    """A rubric by path (wins when the file exists) or by shipped name (hw3, hw9.yaml)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return RubricSource(path=path, name=None, ta_dir=Path(ta_dir) if ta_dir is not None else None)
    shipped = shipped_rubrics()
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    if str(spec) in (name, path.name) and name in shipped:
        folder, _ = ta_dir_setting(ta_dir)
        return RubricSource(path=shipped[name], name=name, ta_dir=(folder or Path.cwd()).resolve())
    known = ", ".join(shipped) or "none found"
    raise RubricError(f"rubric not found: {spec} (no such file, and not a shipped rubric name: {known})")


def ta_note(rubric) -> str:
    """Where a rubric's TA files were looked for, for an error that names a missing one."""
    if rubric.shipped_name is None:
        return ""
    _, origin = ta_dir_setting()
    return (f"TA files of the shipped rubric {rubric.shipped_name!r} are looked for in {rubric.ta_dir} "
            f"({origin}; set --ta-dir DIR or ${TA_DIR_ENV}, or give each with --stats NAME=PATH)")
