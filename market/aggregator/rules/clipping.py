"""Centered clipping (Karimireddy, He, Jaggi 2021) in coefficient space.

v_{l+1} = v_l + (1/n) Σ_i (u_i − v_l) · min(1, τ / ‖u_i − v_l‖), L times. With v_l =
Σ a_j u_j the distances come from the Gram matrix and the update is a_{l+1} = a_l +
(f − (Σf)·a_l)/n for clip factors f. Convention: ByzFL's ``CenteredClipping(m=None, L, tau)``
starts at v_0 = 0 on its first call (later calls start from the previous output — a
momentum the paper takes from the optimiser). A round here starts at 0 (``init="zero"``)
or at the mean; the previous global delta is not in the updates' span, so it is not used.
``tau=null`` (default) sets τ each step to the median distance ‖u_i − v_l‖, which adapts to
the update scale; a number reproduces ByzFL's fixed threshold. Flags: updates clipped by
more than ``flag_factor`` (their distance > flag_factor·τ on the last step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.gram_rule import (
    GramRule,
    RoundInputs,
    Solution,
    sq_dist_to_combination,
)


def centered_clipping(
    g: np.ndarray, tau: float | None, iterations: int, init: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients of v_L, the last step's distances and the last τ."""
    n = g.shape[0]
    a = np.zeros(n) if init == "zero" else np.full(n, 1.0 / n)
    dist = np.sqrt(sq_dist_to_combination(g, a))
    t = 0.0
    for _ in range(iterations):
        dist = np.sqrt(sq_dist_to_combination(g, a))
        t = float(np.median(dist)) if tau is None else float(tau)
        with np.errstate(divide="ignore"):
            factor = np.where(dist > 0, np.minimum(1.0, t / np.where(dist > 0, dist, 1.0)), 1.0)
        a = a + (factor - factor.sum() * a) / n
    return a, dist, t


class CenteredClipping(GramRule):
    """Average of updates clipped to a ball around the current centre, iterated."""

    name = "centered_clipping"
    defaults: dict[str, Any] = {"tau": None, "iterations": 3, "init": "zero", "flag_factor": 3.0}
    parameter_help = {
        "tau": "clipping radius; null: the median distance to the centre at each step",
        "iterations": "clipping steps",
        "init": "'zero' (ByzFL's start) or 'mean'",
        "flag_factor": "flag updates farther than flag_factor·τ on the last step",
    }

    def _validate(self) -> None:
        tau = self.params["tau"]
        if tau is not None and float(tau) < 0:
            raise self._param_error("tau", "must be non-negative or null (median distance)")
        if not isinstance(self.params["iterations"], int) or self.params["iterations"] < 0:
            raise self._param_error("iterations", "must be a non-negative integer")
        if self.params["init"] not in ("zero", "mean"):
            raise self._param_error("init", "must be 'zero' or 'mean'")

    def diagonal_only(self) -> bool:
        # From v_0 = 0 the first step's distances are the norms ‖u_i‖.
        return self.params["init"] == "zero" and self.params["iterations"] <= 1

    def solve(self, inputs: RoundInputs) -> Solution:
        a, dist, t = centered_clipping(
            inputs.gram, self.params["tau"], self.params["iterations"], self.params["init"]
        )
        k = float(self.params["flag_factor"])
        flags: list[str | None] = [
            f"centered_clipping: distance {x:.6g} > {k:g}·τ (τ={t:.6g})" if x > k * t else None
            for x in dist
        ]
        return Solution(a, flags, {"distances": dist.tolist(), "tau": t, "weights": a.tolist()})
