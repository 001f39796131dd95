"""The `grader` console script: click commands only (parse, call, print; no logic).

Each command lives in its own module in this package and is registered here.
"""

from __future__ import annotations

import sys

import click

from grader import __version__
from grader.errors import GraderError


class GraderGroup(click.Group):
    """Turns GraderError (a TA/usage problem) into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=GraderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade generative-model coursework: check, measure (FID), score, report, export."""
    from grader.metrics.resources import fix_mmap_threshold

    fix_mmap_threshold()


def _register() -> None:
    import importlib
    import pkgutil

    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
