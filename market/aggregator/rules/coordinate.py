"""Coordinate-wise median and trimmed mean, streamed over column chunks.

Both need the columns, not the Gram matrix, so they run chunk by chunk (optionally inside
the Gram pass, see :mod:`market.aggregator.engine`). Convention (ByzFL's ``Median`` and
``TrMean(f)``): the median of an even count is the mean of the two middle values; the
trimmed mean drops the f smallest and f largest values per coordinate and averages the
n − 2f left. Both are unweighted (sample counts are self-reported).

Determinism: a partition finds the order statistics, then the kept values are summed in a
canonical order (strictly-inside values in index order, then the boundary value times its
multiplicity), so the result does not depend on how the partition arranged ties.

Coefficients are *effective* weights (``linear=False``): the share of coordinates on which
each update's value was kept, divided by the number kept — Σ c_i = 1, and c_i = 0 means the
update never entered the aggregate. Flags: updates kept on less than ``flag_below`` times
the average share (off by default for the median, which keeps one value per coordinate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
    dequantize,
)
from market.aggregator.rules.gram_rule import resolve_f
from market.errors import AggregationError


def _order_stats(u: np.ndarray, lo_k: int, hi_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The lo_k-th and hi_k-th smallest value of every column (0-based)."""
    part = np.partition(u, sorted({lo_k, hi_k}), axis=0)
    return part[lo_k], part[hi_k]


def trimmed_chunk(u: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean of each column of ``u`` (n, c) and each row's kept mass (n,)."""
    n, c = u.shape
    keep = n - 2 * f
    acc = np.zeros(c)
    if f == 0:
        for i in range(n):
            acc += u[i]
        return acc / n, np.full(n, c / n)
    lo, hi = _order_stats(u, f, n - f - 1)
    inside = (u > lo) & (u < hi)
    for i in range(n):
        acc += np.where(inside[i], u[i], 0.0)
    eq_lo, eq_hi = u == lo, u == hi
    e_lo, e_hi = eq_lo.sum(axis=0), eq_hi.sum(axis=0)
    same = lo == hi
    # Sorted positions f .. n-f-1 are kept: the copies of lo and of hi among them.
    need_lo = np.where(same, keep, (u < lo).sum(axis=0) + e_lo - f)
    need_hi = np.where(same, 0, e_hi + (u > hi).sum(axis=0) - f)
    acc = acc + lo * need_lo
    acc = acc + hi * need_hi
    share = inside.astype(np.float64)
    share += eq_lo * (need_lo / e_lo)
    share += eq_hi * np.where(same, 0.0, need_hi / e_hi)
    return acc / keep, share.sum(axis=1) / keep


def median_chunk(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of each column and each row's share of the selections."""
    n = u.shape[0]
    lo_k, hi_k = (n - 1) // 2, n // 2
    lo, hi = _order_stats(u, lo_k, hi_k)
    eq_lo = u == lo
    if lo_k == hi_k:
        return lo, (eq_lo / eq_lo.sum(axis=0)).sum(axis=1)
    eq_hi = u == hi
    share = eq_lo * (0.5 / eq_lo.sum(axis=0)) + eq_hi * (0.5 / eq_hi.sum(axis=0))
    return (lo + hi) / 2.0, share.sum(axis=1)


class CoordinateRule(Rule):
    """A rule applied column by column; coefficients are effective weights."""

    defaults: dict[str, Any] = {"flag_below": 0.0}

    def _chunk(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def extra_evidence(self) -> dict[str, Any]:
        return {}

    def start(self, n: int) -> None:
        """Prepare for a pass over a batch of n updates."""
        self._n = n

    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        check_inputs(batch, sample_counts, ids)
        acc = CoordinateAccumulator(self, batch.n, batch.d)
        for col, q, s in batch.chunks():
            acc.visit(col, dequantize(q, s, batch.block_size))
        return acc.result()


class CoordinateAccumulator:
    """Collects a coordinate rule's output chunk by chunk (usable as a Gram-pass visitor)."""

    def __init__(self, rule: CoordinateRule, n: int, d: int) -> None:
        rule.start(n)
        self.rule, self.n, self.d = rule, n, d
        self.out = np.zeros(d)
        self.mass = np.zeros(n)

    def visit(self, col: int, u: np.ndarray) -> None:
        agg, mass = self.rule._chunk(u)
        self.out[col : col + u.shape[1]] = agg
        self.mass += mass

    def result(self) -> AggregationResult:
        c = self.mass / self.d
        avg = 1.0 / self.n
        below = float(self.rule.params["flag_below"])
        flags: list[str | None] = [
            f"{self.rule.name}: kept on {x:.3%} of coordinates-weight (< {below:g}× average)"
            if below > 0 and x < below * avg
            else None
            for x in c
        ]
        return AggregationResult(
            aggregate=self.out,
            coefficients=c,
            flags=flags,
            evidence={"effective_weights": c.tolist(), **self.rule.extra_evidence()},
            linear=False,
        )


class CoordinateMedian(CoordinateRule):
    """Per-coordinate median (Yin et al. 2018)."""

    name = "median"

    def _chunk(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return median_chunk(u)


class TrimmedMean(CoordinateRule):
    """Per-coordinate mean after dropping the f smallest and f largest values."""

    name = "trimmed_mean"
    defaults: dict[str, Any] = {"f": None, "byzantine_fraction": 0.3, "flag_below": 0.5}

    def _validate(self) -> None:
        f = self.params["f"]
        if f is not None and (not isinstance(f, int) or f < 0):
            raise self._param_error("f", "must be a non-negative integer or null")
        if not 0.0 <= float(self.params["byzantine_fraction"]) < 0.5:
            raise self._param_error("byzantine_fraction", "must lie in [0, 0.5)")

    def start(self, n: int) -> None:
        super().start(n)
        self._f = resolve_f(n, self.params["f"], float(self.params["byzantine_fraction"]))
        if 2 * self._f >= n:
            raise AggregationError(f"trimmed_mean cannot drop 2f ≥ n values (f={self._f}, n={n})")

    def _chunk(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return trimmed_chunk(u, self._f)

    def extra_evidence(self) -> dict[str, Any]:
        return {"f": self._f}
