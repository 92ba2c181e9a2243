"""Property tests: permutation invariance, translation/scale behaviour, breakdown bounds."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.gram_rule import RoundInputs

FAST = settings(max_examples=20, deadline=None)
# Iterative solvers agree with themselves only to their convergence tolerance.
RTOL = {"flag": 1e-3}
PERMUTATION_INVARIANT = [
    ("fedavg", {}),
    ("median", {}),
    ("trimmed_mean", {"f": 2}),
    ("multi_krum", {"f": 2}),
    ("geometric_median", {}),
    ("centered_clipping", {}),
    ("flag", {"m": 2}),
    ("sybilwall", {"history": False}),
    ("foolsgold", {"history": False}),
]
# Rules whose coefficients sum to one and depend only on distances: translation-equivariant.
DISTANCE_RULES = [("krum", {"f": 2}), ("multi_krum", {"f": 2}), ("geometric_median", {})]


def _updates(seed: int, n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=(n, 1)) + rng.normal(size=d)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(6, 12))
def test_permutation_invariance(seed: int, n: int) -> None:
    batch = QuantizedBatch.from_dense(_updates(seed, n, 300))
    perm = np.random.default_rng(seed).permutation(n)
    for name, params in PERMUTATION_INVARIANT:
        a = get_rule(name, **params).aggregate(batch)
        b = get_rule(name, **params).aggregate(batch.select(perm))
        rtol = RTOL.get(name, 1e-9)
        scale = np.abs(a.aggregate).max()
        assert np.allclose(a.aggregate, b.aggregate, rtol=0, atol=rtol * scale + 1e-12), name
        cmax = np.abs(a.coefficients).max()
        assert np.allclose(a.coefficients[perm], b.coefficients, rtol=0, atol=rtol * cmax), name


@FAST
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100.0))
def test_translation_and_scale(seed: int, scale: float) -> None:
    u = _updates(seed, 9, 50)
    shift = np.random.default_rng(seed + 1).normal(size=50) * 3
    counts = np.ones(9, dtype=np.int64)
    for name, params in DISTANCE_RULES:
        rule = get_rule(name, **params)
        base = rule.solve(RoundInputs(u @ u.T, counts)).coefficients
        v = u + shift
        moved = rule.solve(RoundInputs(v @ v.T, counts)).coefficients
        assert np.isclose(base.sum(), 1.0)
        assert np.allclose(base @ u + shift, moved @ v, rtol=1e-6, atol=1e-6), name
    for name, params in [*DISTANCE_RULES, ("flag", {"m": 2}), ("centered_clipping", {})]:
        rule = get_rule(name, **params)
        base = rule.solve(RoundInputs(u @ u.T, counts)).coefficients
        w = u * scale
        scaled = rule.solve(RoundInputs(w @ w.T, counts)).coefficients
        tol = RTOL.get(name, 1e-6) * np.abs(scaled @ w).max() + 1e-9
        assert np.allclose(base @ u * scale, scaled @ w, rtol=0, atol=tol), name


@FAST
@given(seed=st.integers(0, 2**32 - 1), byz=st.integers(1, 4), power=st.floats(0.0, 6.0))
def test_breakdown_bounds(seed: int, byz: int, power: float) -> None:
    """b < n/2 arbitrary vectors cannot drag robust outputs out of the honest region."""
    rng = np.random.default_rng(seed)
    n = 10
    honest = rng.normal(size=(n - byz, 40)) + 2.0
    attack = rng.normal(size=(byz, 40)) * 10**power + rng.choice([-1, 1]) * 10**power
    u = np.vstack([honest, attack])
    batch = QuantizedBatch.from_dense(u)
    h = batch.dense()[: n - byz]
    # Coordinate median stays inside the honest per-coordinate range.
    med = get_rule("median").aggregate(batch).aggregate
    assert np.all(med >= h.min(0) - 1e-12) and np.all(med <= h.max(0) + 1e-12)
    tm = get_rule("trimmed_mean", f=4).aggregate(batch).aggregate
    assert np.all(tm >= h.min(0) - 1e-12) and np.all(tm <= h.max(0) + 1e-12)
    # Krum: a selected vector lies within sqrt(n − f − 1)·(honest diameter) of some honest one.
    diam = max(np.linalg.norm(a - b) for a in h for b in h)
    k = get_rule("krum", f=4).aggregate(batch).aggregate
    assert min(np.linalg.norm(k - x) for x in h) <= np.sqrt(n - 4 - 1) * diam + 1e-9
    # Geometric median: ‖z − c‖ ≤ 2(n − b)/(n − 2b) · max_i∈H ‖u_i − c‖ for the honest mean c.
    z = get_rule("geometric_median").aggregate(batch).aggregate
    c = h.mean(0)
    radius = max(np.linalg.norm(x - c) for x in h)
    assert np.linalg.norm(z - c) <= 2 * (n - byz) / (n - 2 * byz) * radius * 1.01 + 1e-9
    # Flag (median_norm scale): the output norm never exceeds the median update norm,
    # which b < n/2 attackers cannot push above the largest honest norm.
    fl = get_rule("flag", m=2, scale="median_norm").aggregate(batch).aggregate
    assert np.linalg.norm(fl) <= np.linalg.norm(h, axis=1).max() * (1 + 1e-9)
