"""Our rules against ByzFL (PyPI ``byzfl``) on random inputs, conventions matched.

Conventions (see each rule's module docstring):
- Krum / Multi-Krum: ByzFL scores by the mean squared distance to the n − f − 1 nearest
  others and Multi-Krum averages the n − f best uniformly — our defaults.
- Geometric median: ByzFL starts at 0, runs T steps, floors distances at nu — ours with
  init="zero", max_iter=T, tol=0, nu=nu.
- Centered clipping: ByzFL starts at 0 on its first call with a fixed τ — ours with
  init="zero", tau=τ, iterations=L. (ByzFL keeps v between calls; a round here does not.)
- Median: numpy's median. Trimmed mean: ByzFL TrMean(f) drops f per side — ours f=f.
ByzFL computes in d-space with scipy/numpy, we from the exact Gram: agreement to 1e-9.
"""

import numpy as np
import pytest

from market.aggregator.rules import get_rule
from tests.aggregator.byzfl_oracle import load_byzfl
from tests.aggregator.helpers import random_batch, rel_close

byzfl = load_byzfl()
pytestmark = pytest.mark.skipif(byzfl is None, reason="byzfl (dev extra) is not installed")

CASES = [(10, 3000, 0), (15, 2048, 1), (7, 500, 2)]


@pytest.mark.parametrize(("n", "d", "seed"), CASES)
def test_krum_and_multi_krum(n: int, d: int, seed: int) -> None:
    batch = random_batch(n, d, seed=seed)
    u = batch.dense()
    f = (n - 1) // 2 - 1
    assert rel_close(get_rule("krum", f=f).aggregate(batch).aggregate, byzfl.Krum(f)(u))
    ours = get_rule("multi_krum", f=f).aggregate(batch).aggregate
    assert rel_close(ours, byzfl.MultiKrum(f)(u))


@pytest.mark.parametrize(("n", "d", "seed"), CASES)
def test_geometric_median(n: int, d: int, seed: int) -> None:
    batch = random_batch(n, d, seed=seed)
    u = batch.dense()
    for nu, t in [(0.1, 3), (1e-6, 8)]:
        rule = get_rule("geometric_median", nu=nu, max_iter=t, tol=0.0, init="zero")
        assert rel_close(rule.aggregate(batch).aggregate, byzfl.GeometricMedian(nu, t)(u))


@pytest.mark.parametrize(("n", "d", "seed"), CASES)
def test_centered_clipping(n: int, d: int, seed: int) -> None:
    batch = random_batch(n, d, seed=seed)
    u = batch.dense()
    for tau, iters in [(100.0, 1), (5.0, 3)]:
        rule = get_rule("centered_clipping", tau=tau, iterations=iters, init="zero")
        oracle = byzfl.CenteredClipping(L=iters, tau=tau)
        assert rel_close(rule.aggregate(batch).aggregate, oracle(u))


@pytest.mark.parametrize(("n", "d", "seed"), CASES)
def test_median_and_trimmed_mean(n: int, d: int, seed: int) -> None:
    batch = random_batch(n, d, seed=seed)
    u = batch.dense()
    assert rel_close(get_rule("median").aggregate(batch).aggregate, byzfl.Median()(u), 1e-15)
    for f in (0, 1, (n - 1) // 2):
        ours = get_rule("trimmed_mean", f=f).aggregate(batch).aggregate
        assert rel_close(ours, byzfl.TrMean(f)(u), 1e-12)


def test_fedavg_is_byzfl_average_with_equal_counts() -> None:
    batch = random_batch(6, 1500, seed=9)
    ours = get_rule("fedavg").aggregate(batch, np.full(6, 50)).aggregate
    assert rel_close(ours, byzfl.Average()(batch.dense()), 1e-14)
