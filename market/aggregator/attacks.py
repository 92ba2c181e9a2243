"""Attacks on robust aggregation, for benchmarks and tests (never used by a round).

Model-poisoning attacks take the honest updates H (h, d) — an omniscient attacker, the
standard worst case — and return f Byzantine updates (f, d). Conventions follow ByzFL
where it has the attack (sign flip = −mean; IPM = −τ·mean, τ = 2 by default there and
ε = 0.5 in Xie et al.; ALIE = mean + τ·std with ddof=1, ByzFL τ = 1.5 — Baruch et al.
derive z_max from n and f, available as ``tau=None``). Gaussian noise is N(μ, σ²).
Min-Max / Min-Sum follow Shejwalkar & Houmansadr (2021): mean + γ·p with p = −std, γ the
largest value (binary search) whose max (resp. sum of squared) distance to the honest
updates stays within the honest maximum.
Sybil clones: k identities sending near-identical copies of one update. Free-riders send
zero (the global model resubmitted) or noise. Label flip is data poisoning: y → C−1−y.
``independent_noise`` adds per-client noise so Byzantine updates are not exact copies.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from market.errors import ConfigError


def sign_flip(honest: np.ndarray, f: int, scale: float = 1.0) -> np.ndarray:
    return np.tile(-scale * honest.mean(axis=0), (f, 1))


def ipm(honest: np.ndarray, f: int, epsilon: float = 0.5) -> np.ndarray:
    """Inner-product manipulation (Xie et al. 2020): −ε times the honest mean."""
    return np.tile(-epsilon * honest.mean(axis=0), (f, 1))


def alie_z(n: int, f: int) -> float:
    """Baruch et al.'s z_max: s = ⌊n/2 + 1⌋ − f supporters needed, z = Φ⁻¹((n − s)/n)."""
    s = n // 2 + 1 - f
    p = min(max((n - s) / n, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(p)


def alie(honest: np.ndarray, f: int, tau: float | None = 1.5) -> np.ndarray:
    """A little is enough: mean + τ·std per coordinate (τ=None: z_max for n = h + f)."""
    z = alie_z(len(honest) + f, f) if tau is None else tau
    std = honest.std(axis=0, ddof=1) if len(honest) > 1 else np.zeros(honest.shape[1])
    return np.tile(honest.mean(axis=0) + z * std, (f, 1))


def gaussian(
    honest: np.ndarray, f: int, rng: np.random.Generator, mu: float = 0.0, sigma: float = 1.0
) -> np.ndarray:
    return rng.normal(mu, sigma, size=(f, honest.shape[1]))


def _largest_gamma(ok, hi: float = 50.0, steps: int = 40) -> float:
    """Largest γ in [0, hi] with ok(γ), by bisection (ok is monotone: true then false)."""
    if ok(hi):
        return hi
    lo = 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def min_max(honest: np.ndarray, f: int) -> np.ndarray:
    """Min-Max: max distance to any honest update ≤ the largest honest pairwise distance."""
    mean, p = honest.mean(axis=0), -honest.std(axis=0)
    d2 = ((honest[:, None, :] - honest[None, :, :]) ** 2).sum(-1)
    bound = float(d2.max())

    def ok(gamma: float) -> bool:
        m = mean + gamma * p
        return float(((honest - m) ** 2).sum(1).max()) <= bound

    return np.tile(mean + _largest_gamma(ok) * p, (f, 1))


def min_sum(honest: np.ndarray, f: int) -> np.ndarray:
    """Min-Sum: sum of squared distances to the honest ≤ the largest honest such sum."""
    mean, p = honest.mean(axis=0), -honest.std(axis=0)
    d2 = ((honest[:, None, :] - honest[None, :, :]) ** 2).sum(-1)
    bound = float(d2.sum(1).max())

    def ok(gamma: float) -> bool:
        m = mean + gamma * p
        return float(((honest - m) ** 2).sum()) <= bound

    return np.tile(mean + _largest_gamma(ok) * p, (f, 1))


def sybil_clones(
    base: np.ndarray, k: int, rng: np.random.Generator, relative_noise: float = 1e-3
) -> np.ndarray:
    """k near-identical copies of ``base`` (noise relative to its RMS value)."""
    rms = float(np.sqrt(np.mean(base**2))) or 1.0
    return base[None, :] + relative_noise * rms * rng.normal(size=(k, base.size))


def free_rider(
    d: int, f: int, kind: str = "zero", rng: np.random.Generator | None = None, sigma: float = 1e-3
) -> np.ndarray:
    """Updates from trainers who did not train: zero (resubmitted global model) or noise."""
    if kind == "zero":
        return np.zeros((f, d))
    if kind == "noise":
        return (rng or np.random.default_rng(0)).normal(0.0, sigma, size=(f, d))
    raise ConfigError(f"unknown free-rider kind {kind!r}; use 'zero' or 'noise'")


def independent_noise(
    byz: np.ndarray, rng: np.random.Generator, relative: float = 0.5
) -> np.ndarray:
    """Per-client Gaussian noise with RMS ``relative`` × each update's RMS value."""
    rms = np.sqrt(np.mean(byz**2, axis=1, keepdims=True))
    rms = np.where(rms > 0, rms, 1.0)
    return byz + relative * rms * rng.normal(size=byz.shape)


def label_flip(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Data poisoning: every label y becomes num_classes − 1 − y (ByzFL's 9 − y for 10)."""
    return x, (num_classes - 1 - np.asarray(y)).astype(np.asarray(y).dtype)


MODEL_ATTACKS = {
    "sign_flip": lambda h, f, rng: sign_flip(h, f),
    "ipm": lambda h, f, rng: ipm(h, f),
    "alie": lambda h, f, rng: alie(h, f),
    "gaussian": lambda h, f, rng: gaussian(h, f, rng),
    "min_max": lambda h, f, rng: min_max(h, f),
    "min_sum": lambda h, f, rng: min_sum(h, f),
}


def byzantine_updates(
    name: str, honest: np.ndarray, f: int, rng: np.random.Generator
) -> np.ndarray:
    """f Byzantine updates of the named model-poisoning attack."""
    try:
        return MODEL_ATTACKS[name](honest, f, rng)
    except KeyError:
        raise ConfigError(
            f"unknown attack {name!r}; choose one of: {', '.join(sorted(MODEL_ATTACKS))}"
        ) from None
