"""MeritRank: personalised Monte-Carlo random walks with Sybil-tolerance decays.

Nasrulin, Ishmaev, Pouwelse (2022), "MeritRank: Sybil Tolerant Reputation for Merit-based
Tokenomics", arXiv 2207.09950. Reputation of j seen from seed s is the personalised
PageRank mass of j estimated with random walks from s, attenuated by three decays:

- **transitivity decay α**: at every step the walk ends with probability ``alpha`` (and at a
  node without out-edges). Raw reputation = α · (visits of j) / (walks), which estimates
  exactly π_s = α e_s (I − (1 − α) P)⁻¹, P the row-normalised weights (tests check this by
  solving the linear system). A Sybil region's total mass is then at most the probability
  that a walk enters it through its attack edges, however many Sybils it holds.
- **connectivity decay β**: bridge(j) = max over k ∉ {s, j} of the share of walks visiting
  j that pass k before their first visit to j (1 when every path to j goes through one
  node, as for a Sybil region behind its attacker); reputation(j) = raw(j) · (1 − β ·
  bridge(j)). The paper applies the decay to nodes reached "mostly through one node"; we use
  the share itself rather than a threshold so the penalty is smooth — a documented choice.
- **epoch decay γ**: lives in :class:`~market.reputation.graph.FeedbackGraph` (old rounds'
  feedback weighs (1 − γ)^age). The paper found it does not help Sybil tolerance; γ = 0
  (the default) disables it.

Several seeds (e.g. a project owner's trusted set): the mean of the per-seed reputations.

Determinism and incrementality (our design): step t of walk i from seed s reads two
uniforms from a counter-based hash of (seed, s, i, t), and a node's successors are ordered
by name. A walk's prefix before its first visit to a changed node does not depend on that
node's out-edges, so when edges of node u change, only walks through u are cut at their
first u and re-continued with the same counters: the walks — hence every reputation — are
then *bit-identical* to a from-scratch computation on the new graph (tests check it), so
anyone rebuilding the graph from chain events re-derives the same admission list.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from market.errors import ReputationError
from market.reputation.graph import FeedbackGraph, RewardEvent

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_PICK_BITS = 32
_PICK_ONE = 1 << _PICK_BITS


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _step_bits(key: int, walk: np.ndarray, step: np.ndarray, lane: int) -> np.ndarray:
    """64 random bits for (walk, step, lane) under ``key``: a stateless counter stream."""
    counter = (walk.astype(np.uint64) << np.uint64(32)) | (step.astype(np.uint64) << np.uint64(1))
    counter |= np.uint64(lane)
    return _mix(_mix(counter) ^ np.uint64(key))


def _seed_key(master: int, seed_node: str) -> int:
    digest = hashlib.blake2b(f"{master}:{seed_node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class _SeedState:
    """Walks from one seed, the counters the estimator reads and a node → walks index."""

    __slots__ = ("seed", "key", "walks", "visits", "hits", "pairs", "index", "_bridges")

    def __init__(self, seed: int, key: int) -> None:
        self.seed = seed
        self.key = key
        self.walks: list[list[int]] = []
        self.reset()

    def reset(self) -> None:
        """Forget every count (before re-accounting all walks)."""
        self.visits: Counter[int] = Counter()
        self.hits: Counter[int] = Counter()
        self.pairs: Counter[tuple[int, int]] = Counter()
        self.index: dict[int, set[int]] = {}
        self._bridges: dict[int, float] | None = None

    def account(self, i: int, sign: int) -> None:
        """Add (sign=1) or remove (sign=-1) walk i's visits, hits, bridge pairs, index."""
        walk = self.walks[i]
        first = list(dict.fromkeys(walk))  # distinct nodes in order of first visit
        behind = [n for n in first if n != self.seed]
        pairs = [(j, k) for m, j in enumerate(behind) for k in behind[:m]]
        if sign > 0:
            self.visits.update(walk)
            self.hits.update(first)
            self.pairs.update(pairs)
            for n in first:
                self.index.setdefault(n, set()).add(i)
        else:
            self.visits.subtract(walk)
            self.hits.subtract(first)
            self.pairs.subtract(pairs)
            for n in first:
                self.index[n].discard(i)
        self._bridges = None

    def bridges(self) -> dict[int, float]:
        """bridge(j) = max_k (walks passing k before first j) / (walks visiting j)."""
        if self._bridges is None:
            best: dict[int, int] = {}
            for (j, _k), c in self.pairs.items():
                if c > best.get(j, 0):
                    best[j] = c
            self._bridges = {j: c / self.hits[j] for j, c in best.items() if self.hits[j]}
        return self._bridges


class MeritRank:
    """Incremental personalised MeritRank over a :class:`FeedbackGraph`.

    ``alpha`` is the per-step stop probability (transitivity decay), ``beta`` the
    connectivity decay, ``seed`` the master seed of the walk streams.
    """

    def __init__(
        self,
        graph: FeedbackGraph | None = None,
        *,
        alpha: float = 0.2,
        beta: float = 0.5,
        seed: int = 0,
        walks_per_seed: int = 10_000,
        max_walk_length: int = 64,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ReputationError(f"alpha (stop probability) must be in (0, 1], got {alpha}")
        if not 0.0 <= beta <= 1.0:
            raise ReputationError(f"beta (connectivity decay) must be in [0, 1], got {beta}")
        if walks_per_seed < 1 or max_walk_length < 1:
            raise ReputationError("walks_per_seed and max_walk_length must be >= 1")
        self.graph = graph if graph is not None else FeedbackGraph()
        self.alpha = alpha
        self.beta = beta
        self.seed = int(seed)
        self.walks_per_seed = walks_per_seed
        self.max_walk_length = max_walk_length
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._seeds: dict[int, _SeedState] = {}
        self._seen_version = self.graph.version  # rows are built on demand from here
        self.last_recomputed = 0  # walks re-continued by the last refresh (for benchmarks)

    # ------------------------------------------------------------------ graph edits
    def add_edge(self, src: str, dst: str, weight: float, epoch: int | None = None) -> None:
        """Add feedback and update the walks through ``src`` (lazily, on next query)."""
        self.graph.add_edge(src, dst, weight, epoch)

    def set_edge(self, src: str, dst: str, weight: float, epoch: int | None = None) -> None:
        """Replace an edge (0 removes it); walks through ``src`` are updated."""
        self.graph.set_edge(src, dst, weight, epoch)

    def add_events(self, events: Iterable[RewardEvent]) -> None:
        """Apply a round's reward events; one walk update covers them all."""
        self.graph.apply_events(events)

    # ---------------------------------------------------------------------- queries
    def reputation(self, seeds: str | Sequence[str]) -> dict[str, float]:
        """Reputation of every reached node as seen from ``seeds`` (seeds excluded)."""
        seed_list = [seeds] if isinstance(seeds, str) else list(seeds)
        if not seed_list:
            raise ReputationError("reputation needs at least one seed node")
        self.refresh()
        total: dict[str, float] = {}
        seed_ids = {self._id(s) for s in seed_list}
        for s in seed_list:
            for node, value in self._single(self._state(s)).items():
                if node not in seed_ids:
                    name = self._names[node]
                    total[name] = total.get(name, 0.0) + value / len(seed_list)
        return dict(sorted(total.items()))

    def raw_reputation(self, seed: str) -> dict[str, float]:
        """α · visits / walks from one seed, before connectivity decay (seed included)."""
        self.refresh()
        st = self._state(seed)
        scale = self.alpha / self.walks_per_seed
        return {self._names[n]: c * scale for n, c in sorted(st.visits.items()) if c}

    def bridge_share(self, seed: str) -> dict[str, float]:
        """For each reached node, the largest share of its walks behind one other node."""
        self.refresh()
        st = self._state(seed)
        share = st.bridges()
        return {self._names[n]: v for n, v in sorted(share.items())}

    def walks(self, seed: str) -> list[list[str]]:
        """The stored walks from ``seed`` as node names (for tests and audits)."""
        self.refresh()
        st = self._state(seed)
        return [[self._names[n] for n in w] for w in st.walks]

    # ------------------------------------------------------------------- estimator
    def _single(self, st: _SeedState) -> dict[int, float]:
        scale = self.alpha / self.walks_per_seed
        bridges = st.bridges() if self.beta else {}
        out = {}
        for node, c in st.visits.items():
            if c and node != st.seed:
                out[node] = c * scale * (1.0 - self.beta * bridges.get(node, 0.0))
        return out

    # --------------------------------------------------------------- walk machinery
    def _id(self, name: str) -> int:
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self._names)
            self._names.append(name)
            self._csr = None
        return i

    def _state(self, seed: str) -> _SeedState:
        sid = self._id(seed)
        st = self._seeds.get(sid)
        if st is None:
            st = self._seeds[sid] = _SeedState(sid, _seed_key(self.seed, seed))
            st.walks = [[sid] for _ in range(self.walks_per_seed)]
            self._extend(st, list(range(self.walks_per_seed)))
            for i in range(self.walks_per_seed):
                st.account(i, 1)
        return st

    def _row(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Successor ids and integer cumulative thresholds (last = 2³²) of one node."""
        cached = self._rows.get(node)
        if cached is None:
            names, weights = self.graph.out_row(self._names[node])
            if names:
                cum = np.cumsum(np.asarray(weights, dtype=np.float64))
                q = np.floor(cum / cum[-1] * _PICK_ONE).astype(np.uint64)
                q[-1] = _PICK_ONE
                succ = np.fromiter((self._id(n) for n in names), np.int64, len(names))
            else:
                q = np.zeros(0, np.uint64)
                succ = np.zeros(0, np.int64)
            cached = self._rows[node] = (succ, q)
        return cached

    def _build_csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._csr is None:
            for name in self.graph.nodes():
                self._id(name)
            rows = [self._row(i) for i in range(len(self._names))]
            # _row may have assigned ids to new successor names: cover them too.
            rows += [self._row(i) for i in range(len(rows), len(self._names))]
            deg = np.fromiter((len(r[0]) for r in rows), np.int64, len(rows))
            indptr = np.zeros(len(rows) + 1, np.int64)
            np.cumsum(deg, out=indptr[1:])
            succ = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
            owner = np.repeat(np.arange(len(rows), dtype=np.uint64), deg)
            q = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.uint64)
            keys = (owner << np.uint64(_PICK_BITS + 1)) | q
            self._csr = (indptr, succ, keys)
        return self._csr

    def _extend(self, st: _SeedState, walk_ids: list[int]) -> None:
        """Continue the given walks of ``st`` from their last node until each ends."""
        indptr, succ, keys = self._build_csr()
        idx = np.asarray(walk_ids, dtype=np.int64)
        pos = np.fromiter((len(st.walks[i]) - 1 for i in walk_ids), np.int64, len(walk_ids))
        node = np.fromiter((st.walks[i][-1] for i in walk_ids), np.int64, len(walk_ids))
        while idx.size:
            stop_u = (_step_bits(st.key, idx, pos, 0) >> np.uint64(11)).astype(np.float64)
            stop_u *= 2.0**-53
            deg = indptr[node + 1] - indptr[node]
            go = (stop_u >= self.alpha) & (deg > 0) & (pos + 1 < self.max_walk_length)
            idx, pos, node = idx[go], pos[go], node[go]
            if not idx.size:
                break
            pick = _step_bits(st.key, idx, pos, 1) >> np.uint64(64 - _PICK_BITS)
            probe = (node.astype(np.uint64) << np.uint64(_PICK_BITS + 1)) | pick
            node = succ[np.searchsorted(keys, probe, side="right")]
            for i, n in zip(idx.tolist(), node.tolist(), strict=True):
                st.walks[i].append(n)
            pos = pos + 1

    def refresh(self) -> int:
        """Re-continue the walks through nodes whose out-edges changed; returns their count."""
        changed_names = self.graph.changed_since(self._seen_version)
        self._seen_version = self.graph.version
        if not changed_names:
            self.last_recomputed = 0
            return 0
        changed = {self._id(n) for n in changed_names}
        for c in changed:
            self._rows.pop(c, None)
        self._csr = None
        count = 0
        for st in self._seeds.values():
            ids = sorted({i for c in changed for i in st.index.get(c, ())})
            if not ids:
                continue
            full = len(ids) == len(st.walks)  # e.g. the seed's own edges changed
            if full:
                st.reset()
            for i in ids:
                walk = st.walks[i]
                if not full:
                    st.account(i, -1)
                cut = next(p for p, n in enumerate(walk) if n in changed)
                del walk[cut + 1 :]
            self._extend(st, ids)
            for i in ids:
                st.account(i, 1)
            count += len(ids)
        self.last_recomputed = count
        return count
