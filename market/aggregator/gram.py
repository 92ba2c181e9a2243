"""The exact Gram engine (implementation in :mod:`market.aggregator.rules.gram`)."""

from market.aggregator.rules.gram import (
    block_grams,
    cosines_from_gram,
    distances_from_gram,
    gram,
)

__all__ = ["block_grams", "cosines_from_gram", "distances_from_gram", "gram"]
