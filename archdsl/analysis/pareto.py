"""The Pareto front of trials: those no other trial beats on both cost and quality.

`archdsl tune`'s leaderboard and report mark the front of validation accuracy against params (or MACs):
a trial is on it when no other trial has at most its cost and at least its accuracy, one of them strictly.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def pareto_front(items: Sequence[T], cost: Callable[[T], float], quality: Callable[[T], float]) -> list[T]:
    """The non-dominated items, cheapest first: lower cost and higher quality are better. Of items equal in
    both, the first given is kept. O(n log n)."""
    order = sorted(range(len(items)), key=lambda i: (cost(items[i]), -quality(items[i]), i))
    front: list[T] = []
    best = None
    for i in order:
        q = quality(items[i])
        if best is None or q > best:
            front.append(items[i])
            best = q
    return front
