"""FedAvg: the sample-weighted mean, with each trainer's claimed count capped.

The cap bounds what one trainer gains by overstating its sample count (claims are not
verified). Coefficients c_i = min(n_i, cap) / Σ min(n_j, cap), computed in float64 in index
order; the aggregate is :func:`weighted_sum`, so its bytes are identical on every machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    check_inputs,
    weighted_sum,
)
from market.aggregator.rules.gram_rule import GramRule, RoundInputs, Solution


def fedavg_coefficients(counts: np.ndarray, max_samples: int) -> np.ndarray:
    """Capped sample weights normalised to sum to one; uniform when every count is 0."""
    w = np.minimum(counts.astype(np.float64), float(max_samples))
    total = float(np.sum(w))
    if total <= 0.0:
        return np.full(len(counts), 1.0 / len(counts))
    return w / total


class FedAvg(GramRule):
    """Sample-weighted mean (McMahan et al. 2017); not robust, the accuracy reference.

    Needs no Gram matrix: :meth:`aggregate` makes a single pass (``solve`` serves the
    engine, which runs every rule on one shared pass)."""

    name = "fedavg"
    defaults: dict[str, Any] = {"max_samples": 10_000}

    def _validate(self) -> None:
        m = self.params["max_samples"]
        if not isinstance(m, int) or isinstance(m, bool) or m <= 0:
            raise self._param_error("max_samples", "must be a positive integer")

    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        counts = check_inputs(batch, sample_counts, ids)
        sol = self.solve(RoundInputs(np.zeros((0, 0)), counts, ids, state))
        return AggregationResult(
            aggregate=weighted_sum(batch, sol.coefficients),
            coefficients=sol.coefficients,
            flags=sol.flags,
            evidence=sol.evidence,
        )

    def solve(self, inputs: RoundInputs) -> Solution:
        counts = inputs.counts
        c = fedavg_coefficients(counts, self.params["max_samples"])
        flags: list[str | None] = ["zero weight: no samples claimed" if w == 0 else None for w in c]
        return Solution(
            c,
            flags,
            {
                "weights": c.tolist(),
                "sample_counts": counts.tolist(),
                "capped_counts": np.minimum(counts, self.params["max_samples"]).tolist(),
            },
        )
