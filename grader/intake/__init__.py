"""Getting submissions in: discovery, assignment to rubric artifacts, safe unpacking."""
