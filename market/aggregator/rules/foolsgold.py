"""FoolsGold (Fung et al. 2020) and SybilWall (Werthenbach & Pouwelse 2023).

Both weigh each participant by how *unlike everybody else* its accumulated update history
is: Sybils controlled by one operator push the same objective, so their histories are
unusually similar. Score (shared, from the cosine matrix cs of the histories):
1. cs ← cs − I; maxcs_i = max_j cs_ij (the diagonal's 0 included, as in both reference codes);
2. pardoning: cs_ij ← cs_ij · maxcs_i / maxcs_j when maxcs_i < maxcs_j (honest clients that
   merely resemble a Sybil are forgiven);
3. w_i = clip(1 − max_j cs_ij, 0, 1), rescaled so max w = 1;
4. logit squash w ← clip(κ·(ln(w / (1 − w)) + 0.5), 0, 1).
FoolsGold (DistributedML/FoolsGold) caps w = 1 at 0.99 before the logit and has confidence κ;
SybilWall's code (ThomasWerthenbach/Sybil-Resilient-Decentralized-Learning) adds 1e-5 to
maxcs, skips the cap (so the least similar update keeps weight 1) and uses κ = 1. The
aggregate is Σ w_i u_i / Σ w_i.

History: both papers accumulate each participant's updates over all rounds. Our state keeps
a CountSketch of that sum per trainer id (see :mod:`sketch`; exact when d ≤ sketch_dim), so
it stays JSON-sized and persists across rounds; without ids only this round is used.
SybilWall's gossip (peer-to-peer history exchange) is not needed: the aggregator sees all.

``byzantine`` (SybilWall only, our addition): similarity catches clones, not a lone
attacker or independent attackers whose noise hides their likeness; ``"clip"`` multiplies
each weight by min(1, τ/‖u_i − v‖) around the centered-clipping centre v (τ = median
distance), ``"none"`` is the paper's rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.clipping import centered_clipping
from market.aggregator.rules.gram import cosines_from_gram
from market.aggregator.rules.gram_rule import (
    GramRule,
    RoundInputs,
    Solution,
    sq_dist_to_combination,
)
from market.errors import AggregationError

STATE_VERSION = 1


def similarity_weights(
    cos: np.ndarray, kappa: float = 1.0, cap: bool = False, pardon_eps: float = 1e-5
) -> np.ndarray:
    """FoolsGold-style weights in [0, 1] from a cosine matrix (diagonal ignored)."""
    n = cos.shape[0]
    cs = cos - np.eye(n)
    maxcs = cs.max(axis=1) + pardon_eps
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = maxcs[:, None] / maxcs[None, :]
    cs = np.where(maxcs[:, None] < maxcs[None, :], cs * ratio, cs)
    np.fill_diagonal(cs, 0.0)
    w = np.clip(1.0 - cs.max(axis=1), 0.0, 1.0)
    top = float(w.max())
    if top <= 0.0:
        return np.zeros(n)
    w = w / top
    if cap:
        w = np.where(w == 1.0, 0.99, w)
    with np.errstate(divide="ignore"):
        logit = np.log(w / np.where(w < 1.0, 1.0 - w, 1.0)) + 0.5
    logit = np.where(w >= 1.0, np.inf, logit)
    return np.clip(kappa * logit, 0.0, 1.0)


def update_history(
    state: dict[str, Any] | None,
    ids: list[str] | None,
    sketches: np.ndarray,
    k: int,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """History sketches (n, k) after adding this round, and the new state."""
    if ids is None:
        return sketches, None
    if state is not None:
        if state.get("version") != STATE_VERSION or int(state.get("sketch_dim", -1)) != k:
            raise AggregationError(
                f"history state has version {state.get('version')} / sketch_dim "
                f"{state.get('sketch_dim')}, expected {STATE_VERSION} / {k}; start a fresh state "
                "or keep the rule's sketch_dim unchanged across rounds"
            )
        old = state.get("history", {})
        rounds = dict(state.get("rounds", {}))
    else:
        old, rounds = {}, {}
    hist = sketches.copy()
    for i, tid in enumerate(ids):
        if tid in old:
            prev = np.asarray(old[tid], dtype=np.float64)
            if prev.shape != (k,):
                raise AggregationError(f"history of {tid!r} has shape {prev.shape}, expected {k}")
            hist[i] = prev + sketches[i]
        rounds[tid] = int(rounds.get(tid, 0)) + 1
    new_hist = {tid: list(map(float, v)) for tid, v in old.items()}
    for i, tid in enumerate(ids):
        new_hist[tid] = hist[i].tolist()
    return hist, {
        "version": STATE_VERSION,
        "sketch_dim": k,
        "rounds": rounds,
        "history": new_hist,
    }


class _SimilarityRule(GramRule):
    stateful = True
    kappa_default = 1.0
    cap = False
    pardon_eps = 1e-5

    def _validate(self) -> None:
        k = self.params["sketch_dim"]
        if not isinstance(k, int) or k < 1 or k & (k - 1):
            raise self._param_error("sketch_dim", "must be a power of two")
        if float(self.params["kappa"]) <= 0:
            raise self._param_error("kappa", "must be positive")

    def sketch_dim(self) -> int:
        return int(self.params["sketch_dim"]) if self.params["history"] else 0

    def _weights(self, inputs: RoundInputs) -> tuple[np.ndarray, np.ndarray, Any]:
        if self.params["history"] and inputs.sketches is not None:
            hist, new_state = update_history(
                inputs.state, inputs.ids, inputs.sketches, int(self.params["sketch_dim"])
            )
            cos = cosines_from_gram(hist @ hist.T)
        else:
            cos, new_state = cosines_from_gram(inputs.gram), None
        w = similarity_weights(cos, float(self.params["kappa"]), self.cap, self.pardon_eps)
        return w, cos, new_state

    def _finish(
        self, w: np.ndarray, cos: np.ndarray, state: Any, extra: dict[str, Any]
    ) -> Solution:
        n = len(w)
        total = float(w.sum())
        c = w / total if total > 0 else np.zeros(n)
        cs = cos - np.eye(n)
        flags: list[str | None] = [
            f"{self.name}: similarity weight 0 (max history cosine {cs[i].max():.4f})"
            if w[i] == 0
            else None
            for i in range(n)
        ]
        evidence = {
            "similarity_weights": w.tolist(),
            "max_similarity": cs.max(axis=1).tolist() if n > 1 else [0.0],
            "weights": c.tolist(),
            **extra,
        }
        return Solution(c, flags, evidence, state)


class FoolsGold(_SimilarityRule):
    """FoolsGold weights (0.99 cap, confidence κ) over accumulated history."""

    name = "foolsgold"
    cap = True
    pardon_eps = 0.0
    defaults: dict[str, Any] = {"kappa": 1.0, "history": True, "sketch_dim": 4096}

    def solve(self, inputs: RoundInputs) -> Solution:
        w, cos, state = self._weights(inputs)
        return self._finish(w, cos, state, {})


class SybilWall(_SimilarityRule):
    """SybilWall's similarity weights over accumulated history, optionally with clipping."""

    name = "sybilwall"
    defaults: dict[str, Any] = {
        "kappa": 1.0,
        "history": True,
        "sketch_dim": 4096,
        "byzantine": "none",
        "clip_iterations": 3,
    }
    parameter_help = {
        "byzantine": "'none' (the paper) or 'clip': also clip each weight around the "
        "centered-clipping centre",
        "clip_iterations": "centered-clipping steps that place that centre",
    }

    def _validate(self) -> None:
        super()._validate()
        if self.params["byzantine"] not in ("none", "clip"):
            raise self._param_error("byzantine", "must be 'none' or 'clip'")

    def solve(self, inputs: RoundInputs) -> Solution:
        w, cos, state = self._weights(inputs)
        extra: dict[str, Any] = {}
        if self.params["byzantine"] == "clip" and float(w.sum()) > 0:
            g = inputs.gram
            a, _, _ = centered_clipping(g, None, int(self.params["clip_iterations"]), "zero")
            dist = np.sqrt(sq_dist_to_combination(g, a))
            tau = float(np.median(dist))
            factor = np.where(dist > tau, tau / np.where(dist > 0, dist, 1.0), 1.0)
            extra = {"clip_factors": factor.tolist(), "clip_tau": tau}
            w = w * factor
        return self._finish(w, cos, state, extra)
