"""Integrity checks of generated image sets: training-set copies, sets shared between
students, and mode collapse. Plain functions on uint8 arrays; the rubric kind lives in
grader/metrics/kinds/integrity.py.
"""
