"""The market-wide reputation book: feedback from finalized rounds in, admission lists out.

One :class:`ReputationBook` holds one feedback graph for the whole market — an owner's
reputation for a trainer draws on every project, not only its own — and one
:class:`MeritRank` whose walks are updated incrementally as rounds are finalized. Each
project reads it from its own seeds (its owner, plus any seeds its policy names).

Its state is a pure function of the events fed to it, in order: the book keeps them in
:attr:`ReputationBook.log` (JSON-able; the indexer stores it), and after a restart
:meth:`ReputationBook.replay` rebuilds the book — walks, reputations and admission lists
come out bit-identical.

Unforgeable edges: a reward table is only accepted with the ``rewardsRoot`` the contract
stored at ``finalizeRound``; the book rebuilds the OpenZeppelin tree and compares the roots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from market.errors import ReputationError
from market.reputation.admission import (
    AddressTree,
    Admission,
    AdmissionPolicy,
    admit,
    normalise_address,
)
from market.reputation.application import Application, verified_applicants
from market.reputation.graph import FeedbackGraph, RewardEvent
from market.reputation.meritrank import MeritRank

DEFAULT_EPOCH_SECONDS = 86_400


def epoch_of(timestamp: int, epoch_seconds: int = DEFAULT_EPOCH_SECONDS) -> int:
    """A market-wide epoch from a block timestamp: rounds of all projects share one clock."""
    return int(timestamp) // epoch_seconds


@dataclass(frozen=True)
class Project:
    project_id: int
    owner: str
    policy: AdmissionPolicy | None  # None: open admission (zero root on chain)
    seeds: tuple[str, ...]


class ReputationBook:
    """Feedback graph + incremental MeritRank for a market; see the module docstring."""

    def __init__(
        self,
        *,
        alpha: float = 0.2,
        beta: float = 0.5,
        gamma: float = 0.0,
        seed: int = 0,
        walks_per_seed: int = 10_000,
    ) -> None:
        self.graph = FeedbackGraph(gamma=gamma)
        self.rank = MeritRank(
            self.graph, alpha=alpha, beta=beta, seed=seed, walks_per_seed=walks_per_seed
        )
        self.projects: dict[int, Project] = {}
        self.rounds: set[tuple[int, int]] = set()
        self.log: list[dict[str, Any]] = []  # every accepted input, JSON-able, in order

    def add_project(
        self,
        project_id: int,
        owner: str,
        policy: AdmissionPolicy | None = None,
        seeds: Sequence[str] = (),
    ) -> Project:
        """Register a project (from ``ProjectCreated`` and its spec's admission policy)."""
        if project_id in self.projects:
            raise ReputationError(f"project {project_id} is already registered")
        owner = normalise_address(owner)
        extra = [normalise_address(s) for s in seeds]
        project = Project(project_id, owner, policy, tuple(dict.fromkeys([owner, *extra])))
        self.projects[project_id] = project
        self.graph.add_node(owner)
        self.log.append(
            {
                "kind": "project",
                "project_id": project_id,
                "owner": owner,
                "policy": policy.to_dict() if policy else None,
                "seeds": extra,
            }
        )
        return project

    def project(self, project_id: int) -> Project:
        try:
            return self.projects[project_id]
        except KeyError:
            raise ReputationError(
                f"project {project_id} is unknown to the reputation book: index its "
                f"ProjectCreated event first"
            ) from None

    def record_rewards(
        self,
        project_id: int,
        round_: int,
        rewards: Mapping[str, int],
        epoch: int,
        rewards_root: bytes | None = None,
    ) -> list[RewardEvent]:
        """Add a finalized round's reward table as owner → trainer feedback.

        With ``rewards_root`` (the chain's), the table must hash to it. A round counts once;
        zero rewards and the owner paying itself add nothing.
        """
        project = self.project(project_id)
        if (project_id, round_) in self.rounds:
            raise ReputationError(f"round {round_} of project {project_id} already recorded")
        table = {normalise_address(a): int(v) for a, v in rewards.items()}
        if rewards_root is not None:
            self._check_root(table, rewards_root, project_id, round_)
        events = [
            RewardEvent(project.owner, trainer, float(amount), epoch)
            for trainer, amount in sorted(table.items())
            if amount > 0 and trainer != project.owner
        ]
        self.graph.apply_events(events)
        self.rounds.add((project_id, round_))
        self.log.append(
            {
                "kind": "rewards",
                "project_id": project_id,
                "round": round_,
                "rewards": {a: str(v) for a, v in sorted(table.items())},
                "epoch": epoch,
            }
        )
        return events

    def replay(self, log: Iterable[Mapping[str, Any]]) -> None:
        """Feed a stored :attr:`log` back (after a restart): same walks, same lists."""
        for entry in log:
            if entry.get("kind") == "project":
                policy = entry.get("policy")
                self.add_project(
                    int(entry["project_id"]),
                    entry["owner"],
                    AdmissionPolicy.from_dict(policy) if policy else None,
                    entry.get("seeds", ()),
                )
            elif entry.get("kind") == "rewards":
                rewards = {a: int(v) for a, v in entry["rewards"].items()}
                self.record_rewards(
                    int(entry["project_id"]), int(entry["round"]), rewards, int(entry["epoch"])
                )
            else:
                raise ReputationError(f"unknown reputation log entry: {dict(entry)}")

    @staticmethod
    def _check_root(table: dict[str, int], root: bytes, project_id: int, round_: int) -> None:
        from market.proofs.merkle import MerkleTree

        if not table:
            raise ReputationError(f"empty reward table for project {project_id} round {round_}")
        built = MerkleTree.of_rewards(list(table.items())).root
        if built != bytes(root):
            raise ReputationError(
                f"reward table of project {project_id} round {round_} does not match the "
                f"chain's rewardsRoot 0x{bytes(root).hex()}: refetch the round report"
            )

    def reputation(self, project_id: int) -> dict[str, float]:
        """Every reached address's reputation from the project's seeds."""
        return self.rank.reputation(list(self.project(project_id).seeds))

    def reputation_of(self, address: str, project_id: int) -> float:
        return self.reputation(project_id).get(normalise_address(address), 0.0)

    def admission(
        self,
        project_id: int,
        round_: int,
        applications: Iterable[Application],
        public_seed: bytes,
        chain_id: int,
        market: str,
        tree_factory: Callable[[list[str]], AddressTree] | None = None,
    ) -> tuple[Admission, dict[str, str]]:
        """Admission for one round from signed applications; also returns dropped ones."""
        project = self.project(project_id)
        if project.policy is None:
            raise ReputationError(
                f"project {project_id} has open admission: open the round with a zero root"
            )
        applicants, dropped = verified_applicants(
            applications, project_id, round_, chain_id, market
        )
        seeds = list(project.seeds)
        out = admit(
            applicants,
            self.rank.reputation(seeds),
            project.policy,
            public_seed,
            known=self.graph.reachable(seeds),
            tree_factory=tree_factory,
        )
        return out, dropped

    def summary(self) -> dict[str, float]:
        """Numbers for the ``/graph`` endpoint."""
        return {
            **self.graph.summary(),
            "projects": len(self.projects),
            "rounds": len(self.rounds),
        }
