"""Packages: grader and reference, plus the top-level rubrics/ folder shipped as grader.rubrics
(the course rubrics stay where the repository keeps them; `--rubric hw3` finds them installed)."""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["grader*", "reference*"]) + ["grader.rubrics"],
    package_dir={"grader.rubrics": "rubrics"},
)
