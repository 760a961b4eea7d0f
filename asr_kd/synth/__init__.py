"""Synthetic WSJ-like task: LM text from a grammar, N-best lists from a
simulated recogniser.  ``make_mini_task`` writes the recipe's default data."""
from .task import make_mini_task

__all__ = ["make_mini_task"]
