"""`grader rubric validate FILE`, `grader rubric list`."""

import click

from grader.rubric import load_rubric
from grader.rubric_catalog import shipped_rubrics


@click.group("rubric")
def rubric_group() -> None:
    """Work with rubric files."""


@rubric_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Validate rubric FILES (paths or shipped names); print every problem with its YAML path
    (exit 2 if any)."""
    for file in files:
        rubric = load_rubric(file)  # GraderError -> exit 2 with the message
        click.echo(
            f"{file}: ok ({len(rubric.artifacts)} artifacts, {len(rubric.metrics)} metrics, "
            f"sha256 {rubric.content_hash[:12]})"
        )


@rubric_group.command("list")
def list_rubrics() -> None:
    """The course rubrics shipped with grader: use a name with --rubric (a path wins)."""
    shipped = shipped_rubrics()
    if not shipped:
        click.echo("no shipped rubrics found")
        return
    for name, path in shipped.items():
        rubric = load_rubric(path)
        click.echo(f"{name:8} {rubric.name}  ({path})")


COMMANDS = [rubric_group]
