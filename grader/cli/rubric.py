"""`grader rubric validate FILE`."""

import click

from grader.rubric import load_rubric


@click.group("rubric")
def rubric_group() -> None:
    """Work with rubric files."""


@rubric_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Validate rubric FILES; print every problem with its YAML path (exit 2 if any)."""
    for file in files:
        rubric = load_rubric(file)  # GraderError -> exit 2 with the message
        click.echo(
            f"{file}: ok ({len(rubric.artifacts)} artifacts, {len(rubric.metrics)} metrics, "
            f"sha256 {rubric.content_hash[:12]})"
        )


COMMANDS = [rubric_group]
