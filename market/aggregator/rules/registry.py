"""Rules by name, as a project's spec selects them."""

from __future__ import annotations

from typing import Any

from market.aggregator.rules.base import Rule
from market.aggregator.rules.clipping import CenteredClipping
from market.aggregator.rules.coordinate import CoordinateMedian, TrimmedMean
from market.aggregator.rules.fedavg import FedAvg
from market.aggregator.rules.flag import Flag
from market.aggregator.rules.foolsgold import FoolsGold, SybilWall
from market.aggregator.rules.geomed import GeometricMedian
from market.aggregator.rules.guard import Guard
from market.aggregator.rules.head import resolve_head
from market.aggregator.rules.krum import Krum, MultiKrum
from market.errors import AggregationError

RULES: dict[str, type[Rule]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        CoordinateMedian,
        TrimmedMean,
        Krum,
        MultiKrum,
        GeometricMedian,
        CenteredClipping,
        FoolsGold,
        SybilWall,
        Flag,
        Guard,
    )
}


def get_rule(name: str, **params: Any) -> Rule:
    """An instance of the rule called ``name`` with ``params`` (validated)."""
    try:
        cls = RULES[name]
    except KeyError:
        raise AggregationError(
            f"unknown aggregation rule {name!r}; choose one of: {', '.join(sorted(RULES))}"
        ) from None
    return cls(**params)


def rule_for(
    name: str, params: dict[str, Any], layout: list[tuple[str, tuple[int, ...]]] | list[list]
) -> Rule:
    """The rule a project's spec selects, with parameters that name model tensors (guard's
    ``head``) resolved against the spec's layout [(tensor name, shape), …]."""
    params = dict(params)
    if isinstance(params.get("head"), str):
        entries = [(str(n), tuple(shape)) for n, shape in layout]
        params["head"] = resolve_head(params["head"], entries)
    return get_rule(name, **params)


def catalogue() -> list[dict[str, Any]]:
    """Every rule a project can name: its name, one-line summary, whether it keeps history
    across rounds, its parameters with their defaults (what a spec may override) and a line
    on what each does."""
    return [
        {
            "name": name,
            "summary": (cls.__doc__ or "").strip().splitlines()[0],
            "stateful": cls.stateful,
            "parameters": dict(cls.defaults),
            "help": cls.parameter_docs(),
        }
        for name, cls in RULES.items()
    ]
