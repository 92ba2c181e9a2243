"""Splitting a round's budget by score, in integer wei, reproducibly on every machine.

Scores are turned into fixed-point integers first, so the split is pure integer
arithmetic: reward_i = ⌊budget · p_i / Σp⌋. The division remainder (< number of
trainers wei) is not allocated; the contract returns it to the owner's refundable balance,
so nothing is ever lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from market.errors import AggregationError

SCORE_SCALE = 10**12  # fixed-point unit for published scores


def to_points(scores: Sequence[float]) -> list[int]:
    """Scores as non-negative fixed-point integers (round half to even, like Python)."""
    points = []
    for score in scores:
        if not math.isfinite(score) or score < 0:
            raise AggregationError(f"scores must be finite and ≥ 0, got {score!r}")
        points.append(round(score * SCORE_SCALE))
    return points


def split_rewards(budget_wei: int, points: Sequence[int]) -> list[int]:
    """Each trainer's reward in wei; the sum never exceeds the budget."""
    if budget_wei < 0 or any(p < 0 for p in points):
        raise AggregationError("budget and score points must be non-negative")
    total_points = sum(points)
    if total_points == 0:
        return [0 for _ in points]
    return [budget_wei * p // total_points for p in points]
