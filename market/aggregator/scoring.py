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

Projects that prove their split on chain score in *sketch space* instead
(:func:`sketch_scores`), with exact integer arithmetic that the Groth16 circuit
(zk/circuits/score_split.circom) re-checks, so an honest aggregator always proves. With
fixed-point sketches S_i (12-bit, :mod:`market.proofs.zk`) and coefficients C_i = c_i·2²⁰,
A = Σ_j C_j S_j and a₋ᵢ = A − C_i S_i (A when that is 0):

    q_i     = ⌊√(‖S_i‖² ‖a₋ᵢ‖²)⌋                        (integer square root)
    align_i = ⌊2¹⁶ ⟨S_i, a₋ᵢ⟩ / max(q_i, 1)⌋            (cosine in 2⁻¹⁶ units, floored)
    raw_i   = C_i · max(0, align_i − 6554)                6554 = round(τ · 2¹⁶)
    raw_i   = 0 when ‖S_i‖² < 4                         (free-rider: the sketch is ~zero)
    score_i = raw_i / Σ_j raw_j

The sketch cosine estimates the update cosine with a standard error of about 1/√k (k the
sketch dimension), far above the fixed-point error (≤ 2⁻¹⁶ from the floor, ~10⁻³ from the
12-bit sketches): proof projects trade scoring fidelity for an on-chain check; larger k
narrows the gap. The free-rider floor is relative to the round's largest sketch value
(fixed point maps it to 2047), not to the median norm: a median is costly in a circuit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALIGNMENT_FLOOR = 0.1
NORM_FLOOR = 1e-3
ALIGN_BITS = 16  # proof mode: alignments in 2⁻¹⁶ units
ALIGN_FLOOR_FIXED = round(ALIGNMENT_FLOOR * (1 << ALIGN_BITS))
RIDER_NORM_SQ = 4  # proof mode: ‖S_i‖² below this is a free-rider's (near-zero) sketch


@dataclass(frozen=True)
class SketchScores:
    """Proof-mode scoring of a round in sketch space (module doc), exact integers, with the
    integer square roots and shifted alignments the circuit takes as checked hints."""

    align: list[int]  # ⌊2¹⁶ cos⌋ in sketch space
    raw: list[int]
    rider: list[bool]
    roots: list[int]  # q_i

    def __len__(self) -> int:
        return len(self.raw)


def sketch_scores(s: Sequence[Sequence[int]], c: Sequence[int]) -> SketchScores:
    """The circuit's scoring rule over fixed-point sketches ``s`` and coefficients ``c``."""
    n = len(s)
    k = len(s[0]) if n else 0
    agg = [sum(c[j] * s[j][t] for j in range(n)) for t in range(k)]
    agg_sq = sum(a * a for a in agg)
    aligns, raws, riders, roots = [], [], [], []
    for i in range(n):
        norm = sum(x * x for x in s[i])
        dot_a = sum(s[i][t] * agg[t] for t in range(k))
        dot = dot_a - c[i] * norm
        other_sq = agg_sq - 2 * c[i] * dot_a + c[i] * c[i] * norm
        if other_sq == 0:  # alone in the aggregate: compare with it
            dot, other_sq = dot_a, agg_sq
        q = math.isqrt(norm * other_sq)
        align = ((dot + max(q, 1)) << ALIGN_BITS) // max(q, 1) - (1 << ALIGN_BITS)
        rider = norm < RIDER_NORM_SQ
        raws.append(0 if rider else c[i] * max(0, align - ALIGN_FLOOR_FIXED))
        aligns.append(align)
        riders.append(rider)
        roots.append(q)
    return SketchScores(aligns, raws, riders, roots)


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
    sketch: SketchScores | None = None,
) -> list[ScoreDetail]:
    """Per-update alignment, free-rider verdict and normalised score (see module doc).

    With ``sketch`` (projects that prove their split on chain) the alignment, free-rider
    verdict and score are the sketch-space ones the circuit re-checks; the score is
    raw_i / Σ raw, a correctly rounded quotient of exact integers."""
    n = len(flags)
    if sketch is not None:
        if len(sketch) != n:
            raise ValueError(f"{len(sketch)} sketch scores for {n} updates")
        total_raw = sum(sketch.raw)
        return [
            ScoreDetail(
                0.0 if flags[i] else max(float(coefficients[i]), 0.0),
                sketch.align[i] / (1 << ALIGN_BITS),
                sketch.rider[i],
                sketch.raw[i] / total_raw if total_raw else 0.0,
            )
            for i in range(n)
        ]
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
        raw = 0.0 if rider else c[i] * max(0.0, align - ALIGNMENT_FLOOR) / (1 - ALIGNMENT_FLOOR)
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
