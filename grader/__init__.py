"""grader: an autograding harness for generative-model coursework."""

__version__ = "0.1.0"
