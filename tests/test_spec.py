import pytest

from market.errors import ConfigError
from market.spec import ProjectSpec, canonical_json


def test_spec_round_trip_is_byte_stable():
    spec = ProjectSpec(
        name="p", model={"kind": "mlp"}, layout=[["w", [2, 3]]], initial_model="bafk"
    )
    data = spec.to_bytes()
    assert ProjectSpec.from_bytes(data) == spec
    assert ProjectSpec.from_bytes(data).to_bytes() == data


def test_spec_errors_name_the_problem():
    with pytest.raises(ConfigError, match="not JSON"):
        ProjectSpec.from_bytes(b"{")
    with pytest.raises(ConfigError, match="market-spec/1"):
        ProjectSpec.from_bytes(b"{}")
    with pytest.raises(ConfigError, match="unexpected fields"):
        ProjectSpec.from_bytes(canonical_json({"format": "market-spec/1", "bogus": 1}))
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
