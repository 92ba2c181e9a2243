"""Form checks that run before anything is stored or sent (pure: no chain, no store)."""

from __future__ import annotations

import pytest

from market.api.actions import SpecRequest, check_spec_request, parse_eth
from market.api.verify import _jsonable
from market.errors import ConfigError, MarketError


def test_parse_eth_is_exact_and_refuses_nonsense() -> None:
    assert parse_eth("1.5") == 15 * 10**17
    assert parse_eth(" 0.000000000000000001 ") == 1
    for bad in ("abc", "0", "-1", "1e-19"):
        with pytest.raises(ConfigError):
            parse_eth(bad)


def test_spec_checks_rule_params_widths_and_policy() -> None:
    model, policy = check_spec_request(SpecRequest(name="x", hidden=[8, 4]))
    assert model.hidden == (8, 4) and policy is None
    _, policy = check_spec_request(
        SpecRequest(name="x", admission={"policy": "meritrank", "top_k": 5, "newcomer_quota": 2})
    )
    assert policy is not None and policy.top_k == 5
    for bad in (
        SpecRequest(name="x", rule="nope"),
        SpecRequest(name="x", rule="krum", rule_params={"nonsense": 1}),
        SpecRequest(name="x", hidden=[0]),
        SpecRequest(name="x", admission={"policy": "meritrank"}),
    ):
        with pytest.raises(MarketError):
            check_spec_request(bad)


def test_verification_results_become_json() -> None:
    assert _jsonable({"a": b"\x01", "big": 2**80, "t": (1, None)}) == {
        "a": "0x01",
        "big": str(2**80),
        "t": [1, None],
    }
