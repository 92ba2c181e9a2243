import numpy as np
import pytest

from market.aggregator.engine import run_rules
from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.coordinate import (
    SUB_VALUES,
    SortedColumns,
    _tied_shares,
    median_chunk,
    split_shares,
    trimmed_chunk,
)
from market.errors import AggregationError
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_median_matches_numpy(n: int) -> None:
    batch = random_batch(n, 2500, seed=n)
    res = get_rule("median").aggregate(batch)
    assert np.array_equal(res.aggregate, np.median(batch.dense(), axis=0))
    assert not res.linear and abs(res.coefficients.sum() - 1) < 1e-12


@pytest.mark.parametrize(("n", "f"), [(5, 0), (7, 2), (10, 3), (3, 1)])
def test_trimmed_mean_matches_sorted_reference(n: int, f: int) -> None:
    batch = random_batch(n, 3000, seed=10 + n)
    res = get_rule("trimmed_mean", f=f).aggregate(batch)
    assert rel_close(res.aggregate, ref.trimmed_mean(batch.dense(), f), 1e-12)
    assert abs(res.coefficients.sum() - 1) < 1e-12


def test_ties_are_shared_and_sums_canonical() -> None:
    u = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 5.0], [0.0, 2.0], [3.0, 2.0]])
    agg, mass = trimmed_chunk(SortedColumns.of(u.T), 1)
    assert np.allclose(agg, [1.0, 2.0])
    assert np.isclose(mass.sum(), 2.0)
    med, share = median_chunk(SortedColumns.of(u.T))
    assert np.allclose(med, [1.0, 2.0]) and np.isclose(share.sum(), 2.0)
    # Permuting rows permutes the shares and leaves the bytes of the aggregate unchanged.
    perm = [4, 2, 0, 3, 1]
    agg2, mass2 = trimmed_chunk(SortedColumns.of(u[perm].T), 1)
    assert agg2.tobytes() == agg.tobytes() and np.allclose(mass2, mass[perm])


def test_tie_shares_are_exact_sums_in_a_fixed_order() -> None:
    """Tie shares must not depend on BLAS (a GEMV's summation order follows the machine's
    SIMD width): they equal the correctly rounded exact rational sum, whatever the order of
    the coordinates."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    held = rng.random((4000, 9)) < 0.3
    held[held.sum(axis=1) == 0, 0] = True
    num = rng.integers(0, 7, size=len(held))
    got = split_shares(num, held)
    e = held.sum(axis=1)
    for i in range(held.shape[1]):
        rows = np.flatnonzero(held[:, i])
        exact = sum(Fraction(int(num[r]), int(e[r])) for r in rows)
        # One division per distinct denominator plus the additions: a few ulps at most.
        assert abs(got[i] - float(exact)) <= 8 * np.spacing(float(exact))
    perm = rng.permutation(len(held))
    assert split_shares(num[perm], held[perm]).tobytes() == got.tobytes()


def test_trimmed_mean_drops_outliers_and_flags_them() -> None:
    rng = np.random.default_rng(3)
    u = np.vstack([rng.normal(size=(8, 1000)) * 0.1, np.full((2, 1000), 100.0)])
    res = get_rule("trimmed_mean", f=2).aggregate(QuantizedBatch.from_dense(u))
    assert np.abs(res.aggregate).max() < 1.0
    assert res.coefficients[8] == 0 and res.flags[8] and res.flags[9]


def sorted_reference(batch: QuantizedBatch, f: int) -> tuple[np.ndarray, ...]:
    """Median and trimmed mean by np.sort per sub-chunk: kept values added in sorted order,
    kept mass counted with masks, ties split as the rule specifies."""
    n = batch.n
    u = batch.dense()
    med, tm = np.zeros(batch.d), np.zeros(batch.d)
    med_mass, tm_mass = np.zeros(n), np.zeros(n)
    step = max(1, SUB_VALUES // (n * batch.block_size)) * batch.block_size
    lo_k, hi_k = (n - 1) // 2, n // 2
    for start in range(0, batch.d, step):
        ut = u[:, start : start + step].T
        srt = np.sort(ut, axis=1)
        med[start : start + len(ut)] = (srt[:, lo_k] + srt[:, hi_k]) / 2.0
        for k, mass in ((lo_k, 0.5), (hi_k, 0.5)) if lo_k != hi_k else ((lo_k, 1.0),):
            held = ut == srt[:, k : k + 1]
            med_mass += (mass / held.sum(axis=1)) @ held
        acc = srt[:, f].copy()
        for p in range(f + 1, n - f):
            acc += srt[:, p]
        tm[start : start + len(ut)] = acc / (n - 2 * f)
        lo, hi = srt[:, f : f + 1], srt[:, n - f - 1 : n - f]
        tie = (srt[:, f - 1] == lo[:, 0]) | (srt[:, n - f] == hi[:, 0])
        share = ((ut[~tie] >= lo[~tie]) & (ut[~tie] <= hi[~tie])).sum(axis=0).astype(float)
        if tie.any():
            share += _tied_shares(ut[tie], lo[tie], hi[tie], f)
        tm_mass += share / (n - 2 * f)
    return med, med_mass / batch.d, tm, tm_mass / batch.d


@pytest.mark.parametrize(
    ("n", "levels", "d"), [(10, 127, 5000), (33, 3, 5000), (100, 1, 5000), (100, 127, 4097)]
)
def test_sorted_keys_give_the_sort_reference_bytes(n: int, levels: int, d: int) -> None:
    """Few int8 levels and shared scales make ties at every cut; d = 4097 ends on a
    one-column sub-chunk."""
    rng = np.random.default_rng(n)
    q = rng.integers(-levels, levels + 1, size=(n, d), dtype=np.int8)
    blocks = -(-d // 1024)
    s = rng.choice(np.array([0.5, 0.25, 3e-3], np.float32), size=(n, blocks))
    if levels == 127:  # scales over 12 decades: sums round, so their order shows
        s = (10.0 ** rng.uniform(-6, 6, (n, blocks))).astype(np.float32)
    batch = QuantizedBatch(q, s)
    f = n // 4
    med, med_mass, tm, tm_mass = sorted_reference(batch, f)
    both = run_rules(batch, [get_rule("median"), get_rule("trimmed_mean", f=f)])
    assert both["median"].aggregate.tobytes() == med.tobytes()
    assert both["trimmed_mean"].aggregate.tobytes() == tm.tobytes()
    assert np.allclose(both["median"].coefficients, med_mass, rtol=1e-12, atol=0)
    assert both["trimmed_mean"].coefficients.tobytes() == tm_mass.tobytes()


def test_coordinate_inputs_are_checked() -> None:
    q = np.ones((3, 10), np.int8)
    bad = QuantizedBatch(q, np.array([[1.0], [np.inf], [1.0]], np.float32))
    with pytest.raises(AggregationError, match="finite"):
        get_rule("median").aggregate(bad)
    with pytest.raises(AggregationError, match="exact"):
        SortedColumns.of(np.array([[0.1, 0.2]]))
