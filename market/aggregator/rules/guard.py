"""Guard: our combined rule — SybilWall's clone discount, a geometric-median direction gate
and median-norm clipping, all in coefficient space (the default we recommend).

Why a combination: similarity rules (FoolsGold, SybilWall) cut Sybil clones but punish
honest heterogeneity (their 1 − max-cosine + logit squash zeroes honest trainers whose data
resemble someone else's) and ignore lone or independently-noised attackers; Byzantine rules
(median, Krum) fail once clones are a majority. Guard keeps FedAvg's sample weighting for
everyone who looks honest and removes mass only where an attack shows:

1. **Clone discount** (SybilWall's signal, softened): s_ij = cosine of the trainers'
   accumulated update histories (CountSketch state, as in :mod:`foolsgold`; this round only
   without ids). K(s) = clip((s − lo)/(hi − lo), 0, 1), lo = 0.999, hi = 0.9999;
   dup_i = 1 / (Σ_j K(s_ij))^p with p = ``clone_power`` = 2: k identical clones together
   weigh 1/k of one trainer, so more clones buy *less* influence. Honest histories can be
   very similar (trainers holding the same classes: cosines up to 0.998 on digits), which
   is why FoolsGold-style 1 − max-cosine weights punish honest heterogeneity; only
   near-identical histories (≥ 0.999) are discounted here. Why so high: at α = 0.05
   honest trainers holding one class each come in twins with history cosine up to 0.998
   (digits; a 0.99 cut cost up to 3.4 points of accuracy), while copies of one update sit
   at ≥ 0.9999 within a few rounds — per-copy noise averages out of a history.
   **Groups**: Sybils that add independent noise to each copy stay below the cut for many
   rounds, but their histories converge on each other (the shared attack accumulates, the
   noise averages out: 0.95 after 5 rounds, 0.975 after 10 on digits). A history with at
   least ``group_min`` = 3 others above ``group_lo`` = 0.9 is a group member, and members
   are discounted with the kernel clip((s − group_lo)/(group_hi − group_lo), 0, 1) between
   each other. One or two look-alikes are not evidence: under label skew honest trainers
   come in twins (same classes; first-neighbour history cosine up to 0.988 measured at
   α = 0.1), but an honest trainer's third-nearest history stayed ≤ 0.77 on three seeds.
2. **Norm clipping**: every update is scaled to at most the median update norm.
   Norms are compared per claimed sample (local work grows with data): an update above
   ``drop``× the median norm-per-sample is dropped, one above ``clip``× is scaled down.
3. **Direction gate**: v starts as the weighted geometric median (Weiszfeld, weights =
   capped sample count × dup) of the clipped updates, then is re-centred ``centre_iter``
   times on the gated weighted mean; gate_i = clip((cos(u_i, v) − lo)/(hi − lo), 0, 1) with
   lo = −0.5, hi = −0.2: only updates that *oppose* the honest direction (sign flip, IPM)
   lose weight — honest non-IID updates are often orthogonal to it and must keep theirs.
4. **Label consistency** (opt-in, ``head``): label flippers look like honest trainers in
   every inner product, but their classifier-head rows — the features they attach to each
   label — do not match the other labellers' of the same class
   (:mod:`market.aggregator.rules.head`). Two tests, each accumulated per trainer over
   rounds (mass-weighted), trust = the lower of the two ramps:
   - cosine disagreement with the class's other labellers, over the round's weighted
     median: trust 1 at or below ``label_lo``×, 0 at or above ``label_hi``×; peers are
     weighed as steps 1–3 weigh them, so clones and opposed updates cannot outvote a
     class's honest labellers;
   - nearest centroid: the share of its label mass whose row is nearer another class's
     centroid (built from the trainers the first test trusts) than its own; trust 1 at or
     below ``misfit_lo``, 0 at or above ``misfit_hi``. It catches flipped pairs that look
     alike (digits 0/9, 1/8); classes most of whose labellers misfit are contested and say
     nothing (where flippers are most of a class's labellers, the honest would misfit).
   It needs the model's classifier layer, which only a spec knows (``"head": "auto"``), so
   it is off unless asked for. Measured on digits with 30 % flippers (benchmarks/README.md):
   0.698 / 0.695 (± noise) vs 0.704 honest-only at α = 0.1 (guard: 0.545 / 0.540), 0.860 /
   0.859 vs 0.861 at α = 1.0 (guard: 0.705); with nobody attacking within 1.7 points of
   FedAvg on 9 splits.
Coefficients c_i = w_i·clip_i / Σ w_i with w_i = min(n_i, cap)·dup_i·trust_i·gate_i.
Flags: zero updates, norm outliers, gate 0 (cosine given), dup < 0.5 (near-duplicates),
trust 0 (labels).
Caveat: sample counts are self-reported (capped by ``max_samples``), as in FedAvg.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.foolsgold import update_history
from market.aggregator.rules.geomed import weiszfeld
from market.aggregator.rules.gram import cosines_from_gram
from market.aggregator.rules.gram_rule import GramRule, RoundInputs, Solution
from market.aggregator.rules.head import (
    head_slices,
    label_disagreement,
    label_misfit,
    resolve_head,
    weighted_median,
)
from market.errors import AggregationError


class Guard(GramRule):
    """Clone-discounted, norm-clipped, direction-gated sample-weighted mean."""

    name = "guard"
    stateful = True
    defaults: dict[str, Any] = {
        "history": True,
        "sketch_dim": 4096,
        "similar_lo": 0.999,
        "similar_hi": 0.9999,
        "clone_power": 2.0,
        "group_lo": 0.9,
        "group_hi": 0.95,
        "group_min": 3,
        "oppose_lo": -0.5,
        "oppose_hi": -0.2,
        "round_oppose_lo": -0.98,
        "round_oppose_hi": -0.9,
        "drop": 10.0,
        "centre_iter": 3,
        "max_samples": 10_000,
        "weiszfeld_iter": 50,
        "clip": 3.0,
        "head": None,
        "label_lo": 1.4,
        "label_hi": 1.8,
        "misfit_lo": 0.3,
        "misfit_hi": 0.5,
    }
    parameter_help = {
        "similar_lo": "near-duplicate kernel: history cosine where the discount starts",
        "similar_hi": "near-duplicate kernel: history cosine where a copy counts fully",
        "clone_power": "each of k look-alikes weighs 1/k^p (p = 2: together 1/k of one)",
        "group_lo": "group kernel: history cosine where members start to count as copies",
        "group_hi": "group kernel: history cosine where members count fully",
        "group_min": "look-alikes above group_lo that make a history a group member",
        "oppose_lo": "cosine to the robust centre (of the history; this round's without "
        "ids) at or below which an update gets weight 0",
        "oppose_hi": "… at or above which it keeps its full weight",
        "round_oppose_lo": "with history, the same gate on this round's cosine: weight 0",
        "round_oppose_hi": "… full weight",
        "drop": "drop updates above this multiple of the median norm per sample",
        "clip": "scale down updates above this multiple of the median norm per sample",
        "centre_iter": "re-centring steps of the direction gate",
        "weiszfeld_iter": "Weiszfeld steps of the starting (geometric-median) centre",
        "head": "the classifier layer checked for label consistency: null (off), a layer "
        "name in the model layout ('auto': the last weight and bias), or [weight_offset, "
        "bias_offset, classes, features] in the flat parameter vector",
        "label_lo": "label disagreement (× the round's median) up to which trust is full",
        "label_hi": "label disagreement (× the median) at or above which trust is 0",
        "misfit_lo": "share of a trainer's label mass nearer another class's centroid up to "
        "which trust is full",
        "misfit_hi": "… at or above which trust is 0",
    }

    def _validate(self) -> None:
        k = self.params["sketch_dim"]
        if not isinstance(k, int) or k < 1 or k & (k - 1):
            raise self._param_error("sketch_dim", "must be a power of two")
        for name in ("similar", "group"):
            lo, hi = self._bounds(name)
            if not -1.0 <= lo < hi <= 1.0:
                raise self._param_error(f"{name}_lo", f"needs -1 ≤ {name}_lo < {name}_hi ≤ 1")
        if not isinstance(self.params["group_min"], int) or self.params["group_min"] < 1:
            raise self._param_error("group_min", "must be a positive integer")
        for name in ("oppose", "round_oppose"):
            lo, hi = self._bounds(name)
            if lo >= hi:
                raise self._param_error(f"{name}_lo", f"must be below {name}_hi")
        if float(self.params["drop"]) <= float(self.params["clip"]):
            raise self._param_error("drop", "must exceed clip")
        head = self.params["head"]
        resolved = (
            isinstance(head, list | tuple)
            and len(head) == 4
            and all(isinstance(x, int) and x >= 0 for x in head)
            and head[2] >= 2
            and head[3] >= 1
        )
        if head is not None and not resolved and not (isinstance(head, str) and head):
            raise self._param_error(
                "head",
                "must be null, a layer name, or [weight_offset, bias_offset, "
                "classes ≥ 2, features ≥ 1] of non-negative integers",
            )
        if not 0.0 < float(self.params["label_lo"]) < float(self.params["label_hi"]):
            raise self._param_error("label_lo", "needs 0 < label_lo < label_hi")
        if not 0.0 <= float(self.params["misfit_lo"]) < float(self.params["misfit_hi"]) <= 1.0:
            raise self._param_error("misfit_lo", "needs 0 ≤ misfit_lo < misfit_hi ≤ 1")

    @classmethod
    def bind_layout(
        cls, params: dict[str, Any], layout: list[tuple[str, tuple[int, ...]]]
    ) -> dict[str, Any]:
        if isinstance(params.get("head"), str):
            return {**params, "head": resolve_head(params["head"], layout)}
        return params

    def columns(self) -> list[tuple[int, int]]:
        head = self.params["head"]
        if head is None:
            return []
        if isinstance(head, str):
            raise AggregationError(
                f"guard: head {head!r} names a layer; resolve it against the model layout "
                "first (market.aggregator.rules.rule_for, which the round service calls)"
            )
        weight, bias, _, _ = head_slices(head)
        return [weight, bias]

    def sketch_dim(self) -> int:
        return int(self.params["sketch_dim"]) if self.params["history"] else 0

    def _bounds(self, name: str) -> tuple[float, float]:
        """The ``{name}_lo``, ``{name}_hi`` parameter pair."""
        return float(self.params[f"{name}_lo"]), float(self.params[f"{name}_hi"])

    def _ramp(self, x: np.ndarray, name: str) -> np.ndarray:
        """0 at or below ``{name}_lo``, 1 at or above ``{name}_hi``, linear between."""
        lo, hi = self._bounds(name)
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0)

    def _clone_kernel(self, sim: np.ndarray) -> np.ndarray:
        """K_ij ∈ [0, 1]: how much j counts as a copy of i (near-identical, or a member of
        the same group of look-alikes)."""
        close = sim >= self._bounds("group")[0]
        np.fill_diagonal(close, False)
        member = close.sum(axis=1) >= int(self.params["group_min"])
        group = self._ramp(sim, "group") * np.outer(member, member)
        return np.maximum(self._ramp(sim, "similar"), group)

    def solve(self, inputs: RoundInputs) -> Solution:
        g = inputs.gram
        n = g.shape[0]
        norms = np.sqrt(np.maximum(np.diag(g), 0.0))
        live = norms > 0
        state = None
        hist = None
        sk = inputs.sketches
        if self.params["history"] and sk is not None:
            hist, state = update_history(
                inputs.state, inputs.ids, sk, int(self.params["sketch_dim"])
            )
            sim = cosines_from_gram(hist @ hist.T)
            old = (inputs.state or {}).get("centre")
            centre_old = np.zeros(sk.shape[1]) if old is None else np.asarray(old, float)
            hist_norm = np.sqrt(np.maximum((hist**2).sum(axis=1), 0.0))
        else:
            sim = cosines_from_gram(g)
        kern = self._clone_kernel(sim)
        kern[~live, :] = 0.0
        kern[:, ~live] = 0.0
        np.fill_diagonal(kern, 1.0)
        copies = kern.sum(axis=1) - 1.0  # other updates counted as copies of this one
        dup = 1.0 / (1.0 + copies) ** float(self.params["clone_power"])
        base = np.minimum(inputs.counts.astype(np.float64), float(self.params["max_samples"]))
        if base[live].sum() <= 0:
            base = np.ones(n)
        base = np.maximum(base, 1.0)
        # Norms grow with local work: compare norm per claimed sample.
        ratio = norms / base
        med = float(np.median(ratio[live])) if live.any() else 0.0
        outlier = live & (ratio > float(self.params["drop"]) * med)
        keep = live & ~outlier
        a = np.where(keep, base * dup, 0.0)
        tau = float(self.params["clip"]) * med * base
        clip = np.where(keep, np.minimum(1.0, tau / np.where(live, norms, 1.0)), 0.0)
        gc = g * np.outer(clip, clip)  # Gram of the clipped updates
        gate = np.where(keep, 1.0, 0.0)
        cos = np.zeros(n)
        if a.sum() > 0:
            beta, _, _ = weiszfeld(
                gc,
                a + 1e-300,
                1e-12 * max(float(np.sqrt(gc.diagonal().max())), 1e-300),
                int(self.params["weiszfeld_iter"]),
                1e-10,
                "mean",
            )
            # With history the per-round test only catches blatant opposition: under strong
            # label skew an honest round can point against the centre (cosine −0.79
            # measured) while its history never does (≥ −0.19).
            round_gate = "oppose" if hist is None else "round_oppose"
            cn = np.sqrt(np.maximum(np.diag(gc), 0.0))
            # Start from the geometric median, then re-centre on the gated weighted mean: the
            # honest mean is what FedAvg would give, and attackers opposing it fall to 0.
            for _ in range(int(self.params["centre_iter"]) + 1):
                gb = gc @ beta
                vnorm = float(np.sqrt(max(beta @ gb, 0.0)))
                ok = keep & (cn > 0) & (vnorm > 0)
                cos = np.zeros(n)
                cos[ok] = gb[ok] / (cn[ok] * vnorm)
                gate = np.where(keep, self._ramp(cos, round_gate), 0.0)
                if hist is not None:
                    # The same test on accumulated history: consistent opposition to the
                    # model's trajectory (label flipping) shows there, noise averages out.
                    centre = centre_old + (beta * clip) @ sk
                    cnorm = float(np.sqrt(centre @ centre))
                    hcos = np.where(
                        hist_norm * cnorm > 0,
                        hist @ centre / np.maximum(hist_norm * cnorm, 1e-300),
                        0.0,
                    )
                    gate = np.minimum(gate, np.where(keep, self._ramp(hcos, "oppose"), 0.0))
                wsum = float((a * gate).sum())
                if wsum <= 0:
                    break
                beta = a * gate / wsum
        # Label consistency last: peers are weighed as guard weighs them so far, so that
        # clones or opposed updates cannot outvote the honest labelling of a class.
        trust, label_evidence, labels = self._label_trust(inputs, live, a * gate)
        w = a * gate * trust
        total = float(w.sum())
        c = w * clip / total if total > 0 else np.zeros(n)
        if state is not None and sk is not None:
            state["centre"] = (centre_old + c @ sk).tolist()
        if labels is not None:
            state = {**(state or {}), "labels": labels}
        flags: list[str | None] = []
        for i in range(n):
            if not live[i]:
                flags.append("guard: zero update (nothing trained)")
            elif outlier[i]:
                flags.append(
                    f"guard: norm per sample {ratio[i]:.3g} > {self.params['drop']:g}× median"
                )
            elif gate[i] == 0:
                flags.append(f"guard: direction opposes the robust centre (cosine {cos[i]:.3f})")
            elif dup[i] < 0.5:
                flags.append(f"guard: near-duplicate of {copies[i]:.1f} other updates")
            elif trust[i] == 0:
                flags.append(
                    f"guard: its labels disagree with its peers' "
                    f"({label_evidence['label_disagreement'][i]:.2f}× the median "
                    f"disagreement, {label_evidence['label_misfit'][i]:.0%} of its classes "
                    "nearer another class)"
                )
            else:
                flags.append(None)
        return Solution(
            c,
            flags,
            {
                "weights": c.tolist(),
                "duplicate_discount": dup.tolist(),
                "gate": gate.tolist(),
                "cosine_to_centre": cos.tolist(),
                "clip_factors": clip.tolist(),
                "median_norm_per_sample": med,
                **label_evidence,
                **({"label_trust": trust.tolist()} if self.params["head"] is not None else {}),
            },
            state,
        )

    def _label_trust(
        self, inputs: RoundInputs, live: np.ndarray, peers: np.ndarray
    ) -> tuple[np.ndarray, dict[str, list[float]], dict[str, list[float]] | None]:
        """Trust from label consistency (1 without ``head``), the evidence (accumulated
        disagreement over the round's median, accumulated misfit rate) and the new
        per-trainer sums [Σ mass·dis, Σ mass, Σ mass·misfit, Σ mass] (None without ids:
        this round alone counts)."""
        n = len(live)
        if self.params["head"] is None:
            return np.ones(n), {}, None
        _, _, classes, features = head_slices(self.params["head"])
        weight, bias = inputs.columns
        weight = weight.reshape(n, classes, features)
        dis, dis_mass = label_disagreement(weight, bias, peers)
        sums = np.stack([dis * dis_mass, dis_mass, np.zeros(n), np.zeros(n)], axis=1)
        old = (inputs.state or {}).get("labels", {}) if inputs.ids is not None else {}
        if inputs.ids is not None:
            for i, tid in enumerate(inputs.ids):
                sums[i] += np.asarray(old.get(tid, (0.0,) * 4), dtype=np.float64)
        seen = live & (sums[:, 1] > 0) & (peers > 0)
        mean = np.divide(sums[:, 0], sums[:, 1], out=np.zeros(n), where=sums[:, 1] > 0)
        med = weighted_median(mean[seen], peers[seen]) if seen.any() else 0.0
        ratio = np.where(sums[:, 1] > 0, mean / med, 1.0) if med > 0 else np.ones(n)
        trust = 1.0 - self._ramp(ratio, "label")
        # Nearest-centroid misfit, with centroids from the updates the first test trusts.
        misfit, fit_mass = label_misfit(weight, bias, peers * trust)
        sums[:, 2] += misfit * fit_mass
        sums[:, 3] += fit_mass
        rate = np.divide(sums[:, 2], sums[:, 3], out=np.zeros(n), where=sums[:, 3] > 0)
        trust = np.minimum(trust, 1.0 - self._ramp(rate, "misfit"))
        labels = None
        if inputs.ids is not None:
            labels = {**old, **{tid: sums[i].tolist() for i, tid in enumerate(inputs.ids)}}
        return trust, {"label_disagreement": ratio.tolist(), "label_misfit": rate.tolist()}, labels
