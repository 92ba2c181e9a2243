"""The exact Gram engine (implementation in :mod:`market.aggregator.rules.gram`)."""

from market.aggregator.rules.gram import (
    cosines_from_gram,
    distances_from_gram,
    gram,
)

__all__ = ["cosines_from_gram", "distances_from_gram", "gram"]
