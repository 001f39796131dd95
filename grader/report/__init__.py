"""Reports: an HTML page per student (shareable alone) and a class overview."""

from grader.report.previews import write_previews
from grader.report.render import (
    render_all,
    render_class_page,
    render_student_page,
)

__all__ = [
    "render_all",
    "render_class_page",
    "render_student_page",
    "write_previews",
]
