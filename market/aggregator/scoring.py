"""Contribution scores from the robust rule's evidence (Proof-of-Contribution style).

score_i = c_i⁺ · max(0, cos(u_i, a)), normalised to sum to 1, where c_i is the update's
coefficient in the robust aggregate a = Σ c_j u_j and the cosine is the update's
alignment with that aggregate. So an update pays by how much of the new model it is *and*
how much it points where the new model went: noise and free-riders (near-orthogonal) and
flagged or rejected updates (c = 0) earn ~nothing.

Everything is computed from the exact Gram matrix G with correctly rounded sums
(``math.fsum``), so the scores — and the reward split that follows from them — are
bit-identical on every machine, as ``market verify`` requires.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def contribution_scores(
    coefficients: np.ndarray, flags: Sequence[str | None], gram: np.ndarray
) -> list[float]:
    """Non-negative scores, one per accepted update, summing to 1 (or all 0)."""
    n = len(flags)
    c = [0.0 if flags[i] else max(float(coefficients[i]), 0.0) for i in range(n)]
    g_c = [math.fsum(float(gram[i, j]) * c[j] for j in range(n)) for i in range(n)]
    aggregate_sq = math.fsum(c[i] * g_c[i] for i in range(n))
    raw = []
    for i in range(n):
        denom = math.sqrt(max(float(gram[i, i]), 0.0) * max(aggregate_sq, 0.0))
        alignment = g_c[i] / denom if denom > 0 else 0.0
        raw.append(c[i] * max(0.0, min(1.0, alignment)))
    total = math.fsum(raw)
    return [r / total if total > 0 else 0.0 for r in raw]
