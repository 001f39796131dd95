"""Where things live in a results folder: one place for every path a run writes.

    results/
      grader.db                               the store (store.py)
      index.html                              class page
      students/<student_dir_name(id)>/
        index.html                            the student's page
        assets/<artifact>/...                 previews kept at grading time
      gradescope/<student_dir_name(id)>/results.json
      .grader.lock                            one run at a time (lock.py)
      slurm/tasks.json, slurm/jobs/           --executor slurm: task record, job files
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STUDENTS_DIR = "students"
ASSETS_DIR = "assets"
PAGE = "index.html"
GRADESCOPE_DIR = "gradescope"

_SAFE_DIR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?")  # no trailing "."
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                     *(f"LPT{i}" for i in range(10))}


def student_dir_name(student_id: str) -> str:
    """A folder name for a student that is safe on every file system and in a URL.

    Ids made of letters, digits, '.', '_' and '-' (not starting with '.' or '-') are kept;
    any other id is slugified and suffixed with a hash of the exact id, so two ids never
    share a folder.
    """
    stem = student_id.split(".")[0].upper()
    if _SAFE_DIR.fullmatch(student_id) and stem not in _WINDOWS_RESERVED:
        return student_id
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", student_id).strip("._-")[:40] or "student"
    digest = hashlib.sha256(student_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}"


def student_dir(results: Path, student_id: str) -> Path:
    return Path(results) / STUDENTS_DIR / student_dir_name(student_id)


def assets_dir(students_root: Path, student_id: str) -> Path:
    """Assets of one student under a `students/` folder (or a scratch stand-in for it)."""
    return Path(students_root) / student_dir_name(student_id) / ASSETS_DIR


def student_href(student_id: str) -> str:
    """The class page's link to a student page, relative to the results folder."""
    return f"{STUDENTS_DIR}/{student_dir_name(student_id)}/{PAGE}"


def gradescope_file(out_dir: Path, student_id: str) -> Path:
    return Path(out_dir) / student_dir_name(student_id) / "results.json"
