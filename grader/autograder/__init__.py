"""Autograders for the platforms courses grade on (Gradescope, PrairieLearn), built from a rubric."""
