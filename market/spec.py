"""The project spec: what the owner asks for, stored on the content-addressed store.

Its CID's digest goes on chain in ``createProject``; trainers and the aggregator read the
model architecture, data schema, training recipe, robust rule and limits from it.
Encoded as canonical JSON (sorted keys, no whitespace) so its bytes — and CID — are stable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from market.errors import ConfigError

SPEC_FORMAT = "market-spec/1"


@dataclass(frozen=True)
class ProjectSpec:
    name: str
    model: dict[str, Any]
    layout: list[list[Any]]  # [[tensor name, shape], …] in the model's order
    initial_model: str
    data_schema: str = "digits-8x8"
    rule: str = "guard"
    rule_params: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(
        default_factory=lambda: {"epochs": 5, "lr": 0.2, "batch_size": 16}
    )
    max_update_bytes: int = 64 * 1024 * 1024
    max_update_norm: float | None = None
    admission: dict[str, Any] = field(default_factory=lambda: {"policy": "open"})

    def to_bytes(self) -> bytes:
        return canonical_json({"format": SPEC_FORMAT, **asdict(self)})

    @classmethod
    def from_bytes(cls, data: bytes) -> ProjectSpec:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise ConfigError(f"project spec is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.pop("format", None) != SPEC_FORMAT:
            raise ConfigError(f"project spec is not a {SPEC_FORMAT} document")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"project spec has unexpected fields: {exc}") from exc


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact, UTF-8, no NaN/Infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False
    ).encode()
