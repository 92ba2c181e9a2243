"""Contribution scores from the robust rule's evidence (Proof-of-Contribution style).

Following Buyukates et al. 2023 (arXiv 2302.14031), a trainer is paid for how much its
update *contributes* to the aggregate the robust rule accepted. With c_i the update's
coefficient in the robust aggregate a = Σ_j c_j u_j (0 for flagged updates), we measure
each update against the aggregate of the *others*, a₋ᵢ = a − c_i u_i (leave-one-out, so a
large noisy update cannot align with itself):

    align_i = ⟨u_i, a₋ᵢ⟩ / (‖u_i‖ ‖a₋ᵢ‖)          (cosine; a₋ᵢ := a when a₋ᵢ = 0)
    raw_i   = c_i⁺ · max(0, align_i − τ) / (1 − τ)     τ = ALIGNMENT_FLOOR = 0.1
    raw_i   = 0 when ‖u_i‖ < NORM_FLOOR · median‖u‖   (free-rider: "nothing" sent)
    score_i = raw_i / Σ_j raw_j                        (all 0 when Σ raw = 0)

So flagged and rejected updates (c = 0), free-riders that send a zero or near-zero delta
(e.g. the global model resubmitted, delta ≈ 0) and pure noise (|cos| with the others
≈ 1/√d, under τ) score 0, and an update pays by how much of the new model it is *and* how
much it points where the others went. The paper's validation-loss term is not used: the
project spec has no owner-held validation set yet. Scores then become fixed-point points
(:mod:`market.aggregator.rewards`, 10⁻¹² units) and the budget is split by integer division.

Everything is computed from the exact Gram matrix G (⟨u_i, a₋ᵢ⟩ = Σ_{j≠i} c_j G_ij,
‖a₋ᵢ‖² = cᵀGc − 2c_i(Gc)_i + c_i² G_ii) with correctly rounded sums (``math.fsum``), so
the scores — and the reward split that follows — are bit-identical on every machine, as
``market verify`` requires.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALIGNMENT_FLOOR = 0.1
NORM_FLOOR = 1e-3


@dataclass(frozen=True)
class ScoreDetail:
    """Why an update scored what it did: published per update in the round report."""

    coefficient: float
    alignment: float
    free_rider: bool
    score: float


def score_details(
    coefficients: np.ndarray,
    flags: Sequence[str | None],
    gram: np.ndarray,
    gate: Sequence[bool] | None = None,
) -> list[ScoreDetail]:
    """Per-update alignment, free-rider verdict and normalised score (see module doc).

    ``gate[i] = False`` forces raw_i = 0: projects that prove their split on chain add the
    sketch gate of :mod:`market.proofs.zk` (the update points along the others' aggregate
    in sketch space too), so the proven statement always holds for an honest round."""
    n = len(flags)
    c = [0.0 if flags[i] else max(float(coefficients[i]), 0.0) for i in range(n)]
    diag = [max(float(gram[i, i]), 0.0) for i in range(n)]
    norms = [math.sqrt(x) for x in diag]
    median = statistics.median(norms) if norms else 0.0
    g_c = [math.fsum(float(gram[i, j]) * c[j] for j in range(n)) for i in range(n)]
    agg_sq = max(math.fsum(c[i] * g_c[i] for i in range(n)), 0.0)
    raws, aligns, riders = [], [], []
    for i in range(n):
        dot = math.fsum(float(gram[i, j]) * c[j] for j in range(n) if j != i)
        other_sq = math.fsum([agg_sq, -2.0 * c[i] * g_c[i], c[i] * c[i] * diag[i]])
        if not any(c[j] > 0.0 for j in range(n) if j != i):
            dot, other_sq = g_c[i], agg_sq  # alone in the aggregate: compare with it
        denom = math.sqrt(diag[i] * max(other_sq, 0.0))
        align = max(-1.0, min(1.0, dot / denom)) if denom > 0 else 0.0
        rider = norms[i] < NORM_FLOOR * median or norms[i] == 0.0
        closed = gate is not None and not gate[i]
        raw = (
            0.0
            if rider or closed
            else c[i] * max(0.0, align - ALIGNMENT_FLOOR) / (1 - ALIGNMENT_FLOOR)
        )
        raws.append(raw)
        aligns.append(align)
        riders.append(rider)
    total = math.fsum(raws)
    return [
        ScoreDetail(c[i], aligns[i], riders[i], raws[i] / total if total > 0 else 0.0)
        for i in range(n)
    ]


def contribution_scores(
    coefficients: np.ndarray, flags: Sequence[str | None], gram: np.ndarray
) -> list[float]:
    """Non-negative scores, one per accepted update, summing to 1 (or all 0)."""
    return [d.score for d in score_details(coefficients, flags, gram)]
