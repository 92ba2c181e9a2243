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


def _rule_class(name: str) -> type[Rule]:
    try:
        return RULES[name]
    except KeyError:
        raise AggregationError(
            f"unknown aggregation rule {name!r}; choose one of: {', '.join(sorted(RULES))}"
        ) from None


def get_rule(name: str, **params: Any) -> Rule:
    """An instance of the rule called ``name`` with ``params`` (validated)."""
    return _rule_class(name)(**params)


def rule_for(
    name: str, params: dict[str, Any], layout: list[tuple[str, tuple[int, ...]]] | list[list]
) -> Rule:
    """The rule a project's spec selects, with parameters that name model tensors (guard's
    ``head``) resolved against the spec's layout [(tensor name, shape), …]
    (:meth:`Rule.bind_layout`)."""
    cls = _rule_class(name)
    entries = [(str(n), tuple(shape)) for n, shape in layout]
    return cls(**cls.bind_layout(params, entries))


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
