"""The aggregator: robust rules (pure functions over quantised update arrays), the exact
Gram engine, contribution scores, the reward split, round reports, and the round service
that turns revealed updates into a finalized round.

The rules in :mod:`market.aggregator.rules` import no chain, storage or database code; the
service (:mod:`.service`) and the long-running runner (:mod:`.runner`) do, and are imported
from their modules so that using a rule never pulls in web3.
"""

from market.aggregator.engine import run_rules
from market.aggregator.report import RoundReport, SubmissionEntry
from market.aggregator.rewards import SCORE_SCALE, split_rewards, to_points
from market.aggregator.rules import (
    BLOCK_SIZE,
    RULES,
    AggregationResult,
    CallableSource,
    ChunkSource,
    QuantizedBatch,
    Rule,
    cosines_from_gram,
    dequantize,
    distances_from_gram,
    get_rule,
    gram,
    rule_for,
    weighted_sum,
)
from market.aggregator.scoring import contribution_scores

__all__ = [
    "BLOCK_SIZE",
    "RULES",
    "SCORE_SCALE",
    "AggregationResult",
    "CallableSource",
    "ChunkSource",
    "QuantizedBatch",
    "RoundReport",
    "Rule",
    "SubmissionEntry",
    "contribution_scores",
    "cosines_from_gram",
    "dequantize",
    "distances_from_gram",
    "get_rule",
    "gram",
    "rule_for",
    "run_rules",
    "split_rewards",
    "to_points",
    "weighted_sum",
]
