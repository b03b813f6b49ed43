"""Fault injection and model-based tests (issue 9): nothing lost, ever."""
