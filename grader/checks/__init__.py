"""Checks of submitted artifacts: pure functions from files and a rubric spec to Findings."""
