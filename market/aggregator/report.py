"""The round report: everything needed to re-execute a round, as canonical JSON on the store.

Its digest goes on chain in ``finalizeRound``. Wei amounts are decimal strings (they
exceed what JSON readers in other languages hold exactly); scores are fixed-point integers.
Floats (coefficients, alignments, sketches) are JSON's shortest round-trip repr, so a
reader gets the very float64 the aggregator computed and can re-execute bit for bit.

What ``market verify`` needs, and where it is: the rule and its parameters; the accepted
updates in batch order (``batch_order``; submissions are sorted by trainer) with their CIDs;
each rejection's reason; each update's coefficient, alignment, free-rider verdict, score
points, reward and sketch; the sketch seed block and the sketches' commitment; the reward
table's leaves (``rewards()``) and root.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from market.errors import ProofError
from market.spec import canonical_json

REPORT_FORMAT = "market-report/1"


@dataclass(frozen=True)
class SubmissionEntry:
    trainer: str
    update_cid: str | None
    status: str  # "accepted" | "rejected"
    reason: str | None
    coefficient: float
    score_points: int
    reward_wei: int
    alignment: float = 0.0
    free_rider: bool = False
    sketch: list[float] | None = None


@dataclass(frozen=True)
class RoundReport:
    chain_id: int
    contract: str
    project_id: int
    round: int
    rule: str
    rule_params: dict[str, Any]
    global_model: str
    new_model: str
    budget_wei: int
    total_wei: int
    rewards_root: str
    submissions: list[SubmissionEntry]
    evidence: dict[str, Any] = field(default_factory=dict)
    batch_order: list[str] = field(default_factory=list)
    score_scale: int = 0
    scoring: dict[str, Any] = field(default_factory=dict)
    sketch_scheme: str | None = None
    sketch_dim: int = 0
    sketch_seed_block: int | None = None
    sketch_seed: str | None = None
    sketch_commitment: str | None = None
    gram_digest: str | None = None
    zk: dict[str, Any] = field(default_factory=dict)

    def rewards(self) -> list[tuple[str, int]]:
        """The reward table's leaves: (account, wei) for every positive reward."""
        return [(s.trainer, s.reward_wei) for s in self.submissions if s.reward_wei > 0]

    def accepted(self) -> list[SubmissionEntry]:
        """The entries that went into the rule, in batch order."""
        by_trainer = {s.trainer: s for s in self.submissions}
        return [by_trainer[t] for t in self.batch_order]

    def to_bytes(self) -> bytes:
        raw = asdict(self)
        raw["budget_wei"] = str(self.budget_wei)
        raw["total_wei"] = str(self.total_wei)
        for entry in raw["submissions"]:
            entry["reward_wei"] = str(entry["reward_wei"])
        return canonical_json({"format": REPORT_FORMAT, **raw})

    @classmethod
    def from_bytes(cls, data: bytes) -> RoundReport:
        try:
            raw = json.loads(data)
            if raw.pop("format") != REPORT_FORMAT:
                raise ValueError(f"not a {REPORT_FORMAT} document")
            raw["budget_wei"] = int(raw["budget_wei"])
            raw["total_wei"] = int(raw["total_wei"])
            raw["submissions"] = [
                SubmissionEntry(**{**s, "reward_wei": int(s["reward_wei"])})
                for s in raw["submissions"]
            ]
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProofError(f"malformed round report: {exc}") from exc
