"""Robust aggregation rules behind one interface: ``get_rule(name, **params).aggregate(...)``."""

from market.aggregator.rules.base import (
    BLOCK_SIZE,
    AggregationResult,
    CallableSource,
    ChunkSource,
    QuantizedBatch,
    Rule,
    dequantize,
    weighted_sum,
)
from market.aggregator.rules.gram import cosines_from_gram, distances_from_gram, gram
from market.aggregator.rules.registry import RULES, catalogue, get_rule, rule_for

__all__ = [
    "BLOCK_SIZE",
    "RULES",
    "AggregationResult",
    "CallableSource",
    "ChunkSource",
    "QuantizedBatch",
    "Rule",
    "catalogue",
    "cosines_from_gram",
    "dequantize",
    "distances_from_gram",
    "get_rule",
    "gram",
    "rule_for",
    "weighted_sum",
]
