"""Rules that need only inner products: one Gram pass, n×n work, one weighted-sum pass.

A :class:`GramRule` turns the exact Gram matrix into a coefficient vector c (aggregate =
Σ c_i u_i). The coefficient step is public (:meth:`GramRule.solve`) so a round can compute
the Gram once and run every rule's evidence on it (see :mod:`market.aggregator.engine`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
    dequantize,
    weighted_sum,
)
from market.aggregator.rules.gram import ChunkVisitor, gram, gram_diagonal
from market.aggregator.rules.sketch import Sketcher
from market.errors import AggregationError


@dataclass
class Solution:
    """What a Gram rule decides: coefficients, flags, evidence and new state."""

    coefficients: np.ndarray
    flags: list[str | None]
    evidence: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None


@dataclass
class RoundInputs:
    """Everything a coefficient-space rule may use; ``sketches`` only when requested.

    ``gram`` is the exact Gram matrix, or for a rule whose :meth:`GramRule.diagonal_only`
    is true possibly just its diagonal (zeros elsewhere), which is all such a rule reads.
    ``columns``: the exact values (n, stop − start) of each range :meth:`GramRule.columns`
    asked for."""

    gram: np.ndarray
    counts: np.ndarray
    ids: list[str] | None = None
    state: dict[str, Any] | None = None
    sketches: np.ndarray | None = None
    columns: list[np.ndarray] = field(default_factory=list)


class GramRule(Rule):
    """Base for Krum, Multi-Krum, geometric median, centered clipping, Flag, FoolsGold …"""

    # Dimension of the per-update CountSketch a rule needs from the pass (0: none).
    def sketch_dim(self) -> int:
        return 0

    def diagonal_only(self) -> bool:
        """True when :meth:`solve` reads only the norms diag(G): alone, the rule then runs an
        O(n·d) norms pass instead of the O(n²·d) Gram pass (same diagonal, same bytes)."""
        return False

    def columns(self) -> list[tuple[int, int]]:
        """Small column ranges [start, stop) the rule reads as values (a classifier head),
        besides the Gram matrix."""
        return []

    @abstractmethod
    def solve(self, inputs: RoundInputs) -> Solution:
        """Coefficients from the Gram matrix (and sketches/state when the rule uses them)."""

    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        counts = check_inputs(batch, sample_counts, ids)
        g, full, sketches = shared_pass(batch, [self])
        sk = sketches.get(self.sketch_dim())
        cols = read_columns(batch, self.columns())
        sol = self.solve(RoundInputs(g, counts, ids, state, sk, cols))
        return finish(batch, sol, g if full else None)


def read_columns(source: ChunkSource, ranges: list[tuple[int, int]]) -> list[np.ndarray]:
    """The exact float64 values (n, stop − start) of each column range, read by block."""
    out = []
    b = source.block_size
    for start, stop in ranges:
        if not 0 <= start < stop <= source.d:
            raise AggregationError(
                f"column range [{start}, {stop}) does not fit {source.d} parameters"
            )
        first, last = start // b, -(-stop // b)
        q, s = source.read(first, last)
        out.append(dequantize(q, s, b)[:, start - first * b : stop - first * b])
    return out


def shared_pass(
    source: ChunkSource, rules: Sequence[GramRule], visit: ChunkVisitor | None = None
) -> tuple[np.ndarray, bool, dict[int, np.ndarray]]:
    """The one streaming pass that ``rules`` need, with ``visit`` riding it (see
    :func:`gram`): (G, full, sketches by dimension). G is the exact Gram matrix when full —
    some rule reads more than the norms, or needs sketches — else only its diagonal (as an
    n×n matrix, zeros elsewhere); without rules, only ``visit`` runs and G is all zeros."""
    n = source.n
    dims = sorted({r.sketch_dim() for r in rules} - {0})
    sketchers = {k: Sketcher(n, k, source.block_size) for k in dims}
    full = bool(sketchers) or any(not r.diagonal_only() for r in rules)
    if full:
        g = gram(source, visit=visit, sketchers=list(sketchers.values()))
    elif rules:
        g = np.diag(gram_diagonal(source, visit=visit))
    else:
        g = np.zeros((n, n))
        for col, q, s in source.chunks():
            if visit is not None:
                visit(col, q, s)
    return g, full, {k: sketcher.result() for k, sketcher in sketchers.items()}


def finish(batch: ChunkSource, sol: Solution, g: np.ndarray | None = None) -> AggregationResult:
    """Second pass: the aggregate from the coefficients, in the fixed index order."""
    c = np.asarray(sol.coefficients, dtype=np.float64)
    if not np.all(np.isfinite(c)):
        raise AggregationError("rule produced non-finite coefficients; inputs are degenerate")
    return AggregationResult(
        aggregate=weighted_sum(batch, c),
        coefficients=c,
        flags=sol.flags,
        evidence=sol.evidence,
        state=sol.state,
        gram=g,
    )


def resolve_f(n: int, f: int | None, fraction: float) -> int:
    """The assumed number of Byzantine updates: explicit, else ⌊fraction·n⌋."""
    return int(f) if f is not None else int(np.floor(fraction * n))


def sq_dist_to_combination(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """‖u_i − Σ_j a_j u_j‖² for every i, from the Gram matrix (clipped at 0)."""
    ga = g @ a
    return np.maximum(np.diag(g) - 2.0 * ga + float(a @ ga), 0.0)
