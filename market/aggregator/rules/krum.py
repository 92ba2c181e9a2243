"""Krum and Multi-Krum (Blanchard et al. 2017) in coefficient space.

Convention (matches ByzFL, which our tests cross-check): the score of update i is the
**mean** of its squared distances to its n − f − 1 nearest other updates. Blanchard et al.
sum over n − f − 2 neighbours, and Flower follows them; pass ``neighbours="blanchard"``
for that variant (the sum/mean difference never changes the ranking). Ties go to the lower
index. Krum returns the single best update; Multi-Krum averages the m best (default
m = n − f, uniform weights as in ByzFL; Flower weights them by sample count instead).
Flags: Krum flags the f worst-scored updates; Multi-Krum flags the n − m it leaves out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.gram import distances_from_gram
from market.aggregator.rules.gram_rule import GramRule, RoundInputs, Solution, resolve_f
from market.errors import AggregationError


def krum_scores(d2: np.ndarray, f: int, neighbours: str = "byzfl") -> np.ndarray:
    """Krum score of every update from squared distances (n, n)."""
    n = d2.shape[0]
    k = n - f - 1 if neighbours == "byzfl" else n - f - 2
    if k < 1:
        raise AggregationError(f"Krum needs n − f − {1 if neighbours == 'byzfl' else 2} ≥ 1")
    others = np.sort(d2 + np.diag(np.full(n, np.inf)), axis=1)[:, :k]
    return others.mean(axis=1)


def ranking(scores: np.ndarray) -> np.ndarray:
    """Indices by increasing score, ties to the lower index (stable)."""
    return np.argsort(scores, kind="stable")


class _KrumBase(GramRule):
    defaults: dict[str, Any] = {"f": None, "byzantine_fraction": 0.3, "neighbours": "byzfl"}
    parameter_help = {
        "neighbours": "'byzfl': score = mean squared distance to the n − f − 1 nearest; "
        "'blanchard': the paper's n − f − 2 (same ranking)",
        "m": "how many best-scored updates to average; null: n − f",
    }

    def _validate(self) -> None:
        f = self.params["f"]
        if f is not None and (not isinstance(f, int) or f < 0):
            raise self._param_error("f", "must be a non-negative integer or null")
        if not 0.0 <= float(self.params["byzantine_fraction"]) < 0.5:
            raise self._param_error("byzantine_fraction", "must lie in [0, 0.5)")
        if self.params["neighbours"] not in ("byzfl", "blanchard"):
            raise self._param_error("neighbours", "must be 'byzfl' or 'blanchard'")

    def _scores(self, inputs: RoundInputs) -> tuple[int, np.ndarray, np.ndarray]:
        n = inputs.gram.shape[0]
        f = resolve_f(n, self.params["f"], float(self.params["byzantine_fraction"]))
        if 2 * f >= n:
            raise AggregationError(f"{self.name} cannot tolerate 2f ≥ n (f={f}, n={n})")
        d2 = distances_from_gram(inputs.gram)
        return f, d2, krum_scores(d2, f, self.params["neighbours"])

    def _flags(self, order: np.ndarray, scores: np.ndarray, f: int) -> list[str | None]:
        flags: list[str | None] = [None] * len(scores)
        for rank, i in enumerate(order):
            if rank >= len(scores) - f:
                flags[int(i)] = f"{self.name}: score {scores[i]:.6g} among the {f} worst"
        return flags


class Krum(_KrumBase):
    """The single update closest to its n − f − 1 nearest neighbours."""

    name = "krum"

    def solve(self, inputs: RoundInputs) -> Solution:
        f, _, scores = self._scores(inputs)
        order = ranking(scores)
        c = np.zeros(len(scores))
        c[order[0]] = 1.0
        return Solution(
            c,
            self._flags(order, scores, f),
            {"f": f, "scores": scores.tolist(), "selected": [int(order[0])]},
        )


class MultiKrum(_KrumBase):
    """Uniform mean of the m best-scored updates (m = n − f unless given)."""

    name = "multi_krum"
    defaults: dict[str, Any] = {**_KrumBase.defaults, "m": None}

    def _validate(self) -> None:
        super()._validate()
        m = self.params["m"]
        if m is not None and (not isinstance(m, int) or m < 1):
            raise self._param_error("m", "must be a positive integer or null")

    def solve(self, inputs: RoundInputs) -> Solution:
        f, _, scores = self._scores(inputs)
        n = len(scores)
        m = min(n, self.params["m"] if self.params["m"] is not None else n - f)
        order = ranking(scores)
        c = np.zeros(n)
        c[order[:m]] = 1.0 / m
        return Solution(
            c,
            self._flags(order, scores, n - m),
            {"f": f, "m": m, "scores": scores.tolist(), "selected": sorted(map(int, order[:m]))},
        )
