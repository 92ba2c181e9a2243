"""Weighted directed feedback graph with epochs, as MeritRank reads it.

An edge owner → trainer carries the rewards the owner paid the trainer (and, optionally,
aggregator scores); an epoch is a round. Epoch decay γ: feedback given in round r counts
(1 − γ)^(T − r) at the current epoch T, so old work fades and fresh work dominates; γ = 0
(the default) keeps every round at full weight. Like α and β, a larger γ decays more.

Why the graph stores (value, epoch) per edge and not the decayed weight: advancing the epoch
multiplies every edge by the same 1 − γ, which leaves each node's *relative* out-weights — the
only thing a random walk reads — unchanged. So a new epoch alone never invalidates a walk;
only new or changed edges do. The graph stamps each source node with the version at which
its out-edges last changed, so every :class:`~market.reputation.meritrank.MeritRank` reading
it (there may be several) asks ``changed_since(version)`` and recomputes only the walks
passing through those nodes.

Node order inside a node's out-distribution is by node name, never by insertion order, so
two parties building the graph from the same chain events get the same walks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from market.errors import ReputationError


@dataclass(frozen=True)
class RewardEvent:
    """One unit of feedback: ``owner`` paid ``trainer`` ``amount`` in ``round``."""

    owner: str
    trainer: str
    amount: float
    round: int


class FeedbackGraph:
    """Directed graph of positive feedback with epoch decay γ ∈ [0, 1)."""

    def __init__(self, gamma: float = 0.0) -> None:
        if not 0.0 <= gamma < 1.0:
            raise ReputationError(f"epoch decay gamma must be in [0, 1), got {gamma}")
        self.gamma = gamma
        self._keep = 1.0 - gamma  # weight kept per epoch
        self.epoch = 0
        # src -> dst -> [value, epoch_of_value]; weight at epoch T = value·(1 − γ)^(T − epoch).
        self._out: dict[str, dict[str, list[float]]] = {}
        self._in_degree: dict[str, int] = {}
        self.version = 0  # bumped by every edge update
        self._changed_at: dict[str, int] = {}  # src -> version of its last out-edge change
        self._rows: dict[str, tuple[list[str], list[float]]] = {}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_events(cls, events: Iterable[RewardEvent], gamma: float = 0.0) -> FeedbackGraph:
        """Build the graph from reward events in chain order (the indexer's output)."""
        graph = cls(gamma=gamma)
        graph.apply_events(events)
        return graph

    def apply_events(self, events: Iterable[RewardEvent]) -> None:
        """Add every event's amount to its edge; the epoch follows the latest round seen."""
        for ev in events:
            self.add_edge(ev.owner, ev.trainer, ev.amount, ev.round)

    def add_node(self, node: str) -> None:
        """Make ``node`` known without feedback (e.g. an applicant)."""
        self._out.setdefault(node, {})
        self._in_degree.setdefault(node, 0)

    def add_edge(self, src: str, dst: str, weight: float, epoch: int | None = None) -> None:
        """Add ``weight`` of feedback src → dst given in ``epoch`` (default: current)."""
        self._update(src, dst, weight, epoch, accumulate=True)

    def set_edge(self, src: str, dst: str, weight: float, epoch: int | None = None) -> None:
        """Replace the edge src → dst by ``weight`` given in ``epoch``; 0 removes it."""
        self._update(src, dst, weight, epoch, accumulate=False)

    def advance_epoch(self, epoch: int) -> None:
        """Move the current epoch forward; walks stay valid (see module docstring)."""
        if epoch < self.epoch:
            raise ReputationError(f"epoch cannot go back from {self.epoch} to {epoch}")
        self.epoch = epoch

    def _update(
        self, src: str, dst: str, weight: float, epoch: int | None, accumulate: bool
    ) -> None:
        if src == dst:
            raise ReputationError(f"self-feedback {src} -> {dst} is not allowed; drop the event")
        if not math.isfinite(weight) or weight < 0:
            raise ReputationError(f"edge weight must be finite and >= 0, got {weight}")
        ep = self.epoch if epoch is None else int(epoch)
        if ep < 0:
            raise ReputationError(f"epoch must be >= 0, got {ep}")
        self.add_node(src)
        self.add_node(dst)
        row = self._out[src]
        cell = row.get(dst)
        if accumulate and cell is not None:
            value, e0 = cell
            top = max(e0, ep)
            new = value * self._keep ** (top - e0) + weight * self._keep ** (top - ep)
            new_cell = [new, float(top)]
        else:
            new_cell = [weight, float(ep)]
        if new_cell[0] == 0.0:
            if cell is not None:
                del row[dst]
                self._in_degree[dst] -= 1
        else:
            if cell is None:
                self._in_degree[dst] += 1
            row[dst] = new_cell
        self.epoch = max(self.epoch, ep)
        self.version += 1
        self._changed_at[src] = self.version
        self._rows.pop(src, None)

    # ---------------------------------------------------------------------- queries
    def nodes(self) -> list[str]:
        """All known nodes, sorted by name."""
        return sorted(self._out)

    def __contains__(self, node: object) -> bool:
        return node in self._out

    def __len__(self) -> int:
        return len(self._out)

    def edge_count(self) -> int:
        return sum(len(r) for r in self._out.values())

    def in_degree(self, node: str) -> int:
        """Number of distinct nodes that gave ``node`` feedback (0: never paid)."""
        return self._in_degree.get(node, 0)

    def weight(self, src: str, dst: str) -> float:
        """Decayed weight of src → dst at the current epoch (0 if absent)."""
        cell = self._out.get(src, {}).get(dst)
        if cell is None:
            return 0.0
        return cell[0] * self._keep ** (self.epoch - cell[1])

    def edges(self) -> list[tuple[str, str, float]]:
        """(src, dst, decayed weight) for every edge, sorted."""
        return [(s, d, self.weight(s, d)) for s in sorted(self._out) for d in sorted(self._out[s])]

    def out_row(self, src: str) -> tuple[list[str], list[float]]:
        """Successors of ``src`` sorted by name, with relative weights (epoch-free).

        Weights are scaled to the row's newest epoch, (1 − γ)^(e_max − e), so they stay in range
        however many epochs pass; only ratios matter to a walk.
        """
        cached = self._rows.get(src)
        if cached is not None:
            return cached
        row = self._out.get(src, {})
        names = sorted(row)
        if names:
            top = max(row[n][1] for n in names)
            weights = [row[n][0] * self._keep ** (top - row[n][1]) for n in names]
        else:
            weights = []
        self._rows[src] = (names, weights)
        return names, weights

    def changed_since(self, version: int) -> set[str]:
        """Source nodes whose out-edges changed after ``version`` (see ``self.version``)."""
        if version >= self.version:
            return set()
        return {src for src, v in self._changed_at.items() if v > version}

    def reachable(self, seeds: Iterable[str]) -> set[str]:
        """Nodes some path of feedback leads to from ``seeds`` (seeds excluded).

        Exact, unlike a Monte-Carlo estimate that may miss a far node: admission uses it to
        tell "known, with low reputation" from "never seen" (a newcomer).
        """
        start = [s for s in seeds if s in self._out]
        seen = set(start)
        stack = list(start)
        while stack:
            for nxt in self._out[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen - set(start)

    def summary(self) -> dict[str, float]:
        """Small numbers for the ``/graph`` endpoint."""
        return {
            "nodes": len(self._out),
            "edges": self.edge_count(),
            "epoch": self.epoch,
            "gamma": self.gamma,
            "total_weight": sum(w for _, _, w in self.edges()),
        }
