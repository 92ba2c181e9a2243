"""Rules that need only inner products: one Gram pass, n×n work, one weighted-sum pass.

A :class:`GramRule` turns the exact Gram matrix into a coefficient vector c (aggregate =
Σ c_i u_i). The coefficient step is public (:meth:`GramRule.solve`) so a round can compute
the Gram once and run every rule's evidence on it (see :mod:`market.aggregator.engine`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
    weighted_sum,
)
from market.aggregator.rules.gram import gram, gram_diagonal
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
    is true possibly just its diagonal (zeros elsewhere), which is all such a rule reads."""

    gram: np.ndarray
    counts: np.ndarray
    ids: list[str] | None = None
    state: dict[str, Any] | None = None
    sketches: np.ndarray | None = None


class GramRule(Rule):
    """Base for Krum, Multi-Krum, geometric median, centered clipping, Flag, FoolsGold …"""

    # Dimension of the per-update CountSketch a rule needs from the pass (0: none).
    def sketch_dim(self) -> int:
        return 0

    def diagonal_only(self) -> bool:
        """True when :meth:`solve` reads only the norms diag(G): alone, the rule then runs an
        O(n·d) norms pass instead of the O(n²·d) Gram pass (same diagonal, same bytes)."""
        return False

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
        k = self.sketch_dim()
        sketches = None
        if k:
            sketcher = Sketcher(batch.n, k, batch.block_size)
            g = gram(batch, sketchers=[sketcher])
            sketches = sketcher.result()
        elif self.diagonal_only():
            sol = self.solve(RoundInputs(np.diag(gram_diagonal(batch)), counts, ids, state))
            return finish(batch, sol)
        else:
            g = gram(batch)
        sol = self.solve(RoundInputs(g, counts, ids, state, sketches))
        return finish(batch, sol, g)


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
