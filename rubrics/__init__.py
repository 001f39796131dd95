"""The course rubrics, shipped as the package grader.rubrics (see grader/rubric_catalog.py)."""
