"""Every selected rule on one shared pass: what a round (and a benchmark) computes.

Pass 1 streams the column chunks once: the exact Gram matrix, the CountSketches that
history-based rules need and the coordinate-wise rules all feed on the same chunk. The
coefficient-space rules then solve in n×n. Pass 2 (optional) forms every linear rule's
aggregate at once. Peak memory O(n² + n·chunk + r·d) for r aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
    weighted_sums,
)
from market.aggregator.rules.coordinate import CoordinateAccumulator, CoordinateRule
from market.aggregator.rules.gram_rule import GramRule, RoundInputs, read_columns, shared_pass
from market.errors import AggregationError


def run_rules(
    source: ChunkSource,
    rules: Sequence[Rule],
    sample_counts: np.ndarray | None = None,
    states: dict[str, dict[str, Any] | None] | None = None,
    ids: list[str] | None = None,
    aggregates: bool = True,
) -> dict[str, AggregationResult]:
    """Results by rule name; ``aggregates=False`` stops after the evidence (one pass)."""
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise AggregationError(f"rule names must be unique in one run, got {names}")
    counts = check_inputs(source, sample_counts, ids)
    states = states or {}
    coordinate_rules = [r for r in rules if isinstance(r, CoordinateRule)]
    coords = (
        CoordinateAccumulator(coordinate_rules, source.n, source.d, source.block_size)
        if coordinate_rules
        else None
    )
    gram_rules = [r for r in rules if isinstance(r, GramRule)]
    g, full, sketches = shared_pass(source, gram_rules, coords.visit if coords else None)
    results: dict[str, AggregationResult] = {}
    linear: list[tuple[str, Any]] = []
    for rule in rules:
        if isinstance(rule, GramRule):
            sk = sketches.get(rule.sketch_dim())
            cols = read_columns(source, rule.columns())
            sol = rule.solve(RoundInputs(g, counts, ids, states.get(rule.name), sk, cols))
            linear.append((rule.name, sol))
        elif isinstance(rule, CoordinateRule):
            results[rule.name] = coords.result(rule.name)
        else:
            results[rule.name] = rule.aggregate(source, counts, states.get(rule.name), ids)
    if linear:
        coef = np.stack([np.asarray(sol.coefficients, dtype=np.float64) for _, sol in linear])
        if not np.all(np.isfinite(coef)):
            raise AggregationError("a rule produced non-finite coefficients")
        aggs = weighted_sums(source, coef) if aggregates else None
        for r, (name, sol) in enumerate(linear):
            results[name] = AggregationResult(
                aggregate=aggs[r] if aggs is not None else np.zeros(0),
                coefficients=coef[r],
                flags=sol.flags,
                evidence=sol.evidence,
                state=sol.state,
                gram=g if full else None,
            )
    return {name: results[name] for name in names}
