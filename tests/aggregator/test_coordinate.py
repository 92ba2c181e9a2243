import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.aggregator.engine import run_rules
from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.coordinate import (
    SUB_VALUES,
    ColumnOrder,
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


def order_of(u: np.ndarray) -> ColumnOrder:
    """The sub-chunk order of small-integer values u (n, c), scale 1."""
    return ColumnOrder(u.astype(np.int8), np.ones((len(u), 1), np.float32), 1024)


def test_ties_are_shared_and_sums_canonical() -> None:
    u = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 5.0], [0.0, 2.0], [3.0, 2.0]])
    agg, mass = trimmed_chunk(order_of(u), 1)
    assert np.allclose(agg, [1.0, 2.0])
    assert np.isclose(mass.sum(), 2.0)
    med, share = median_chunk(order_of(u))
    assert np.allclose(med, [1.0, 2.0]) and np.isclose(share.sum(), 2.0)
    # Permuting rows permutes the shares and leaves the bytes of the aggregate unchanged.
    perm = [4, 2, 0, 3, 1]
    agg2, mass2 = trimmed_chunk(order_of(u[perm]), 1)
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
    """Median and trimmed mean by np.sort per sub-chunk: kept values added in update order,
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
        # Kept: sorted positions f … n−f−1, equal values ordered by update index; added
        # in update order.
        kept = np.zeros(ut.shape, dtype=bool)
        np.put_along_axis(kept, np.argsort(ut, axis=1, kind="stable")[:, f : n - f], True, 1)
        acc = np.zeros(len(ut))
        for i in range(n):
            acc[kept[:, i]] += ut[kept[:, i], i]
        tm[start : start + len(ut)] = acc / (n - 2 * f)
        lo, hi = srt[:, f : f + 1], srt[:, n - f - 1 : n - f]
        tie = np.zeros(len(ut), dtype=bool)
        if f > 0:
            tie = (srt[:, f - 1] == lo[:, 0]) | (srt[:, n - f] == hi[:, 0])
        share = ((ut[~tie] >= lo[~tie]) & (ut[~tie] <= hi[~tie])).sum(axis=0).astype(float)
        if tie.any():
            share += _tied_shares(ut[tie], lo[tie], hi[tie], f)
        tm_mass += share / (n - 2 * f)
    return med, med_mass / batch.d, tm, tm_mass / batch.d


@pytest.mark.parametrize(
    ("n", "levels", "d", "scales"),
    [
        (10, 127, 5000, "decades"),
        (33, 3, 5000, "shared"),
        (100, 1, 5000, "shared"),
        (100, 127, 4097, "decades"),
        (40, 127, 3000, "close"),
        (7, 127, 2100, "signed"),
    ],
)
def test_sorted_keys_give_the_sort_reference_bytes(
    n: int, levels: int, d: int, scales: str
) -> None:
    """Few int8 levels and shared scales make ties at every cut; scales over 12 decades
    make sums round, so their order shows; scales 2⁻²⁰ apart give distinct values whose
    32-bit keys tie (the exact re-sort must order them); signed scales give −0.0 and +0.0.
    d = 4097 ends on a one-column sub-chunk."""
    rng = np.random.default_rng(n)
    q = rng.integers(-levels, levels + 1, size=(n, d), dtype=np.int8)
    blocks = -(-d // 1024)
    s = {
        "shared": lambda: rng.choice(np.array([0.5, 0.25, 3e-3], np.float32), (n, blocks)),
        "decades": lambda: 10.0 ** rng.uniform(-6, 6, (n, blocks)),
        "close": lambda: 1.0 + rng.integers(0, 8, (n, blocks)) * 2.0**-20,
        "signed": lambda: rng.choice([-1.0, 1.0], (n, blocks)) * rng.uniform(0.5, 2, (n, blocks)),
    }[scales]().astype(np.float32)
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


def test_sort_keys_order_values_exactly_up_to_ties_of_the_truncated_key() -> None:
    """Sorted keys name every update once per coordinate, and order the exact values
    wherever two neighbours' truncated keys differ; scales 2⁻²⁰ apart make distinct values
    share a truncated key, so the exact re-sort is needed (and exercised) there."""
    rng = np.random.default_rng(5)
    n, d = 40, 2048
    q = rng.integers(-127, 128, size=(n, d), dtype=np.int8)
    s = (1.0 + rng.integers(0, 8, (n, 2)) * 2.0**-20).astype(np.float32)
    order = ColumnOrder(q, s, 1024)
    index = order.keys & ((1 << order.bits) - 1)
    assert (np.sort(index, axis=1) == np.arange(n)).all()
    values = (
        s[index, np.arange(d)[:, None] // 1024].astype(np.float64) * q[index, np.arange(d)[:, None]]
    )
    truncated = order.keys >> order.bits
    differ = truncated[:, 1:] != truncated[:, :-1]
    assert (values[:, 1:][differ] > values[:, :-1][differ]).all()
    same = ~differ
    assert (values[:, 1:][same] != values[:, :-1][same]).any()


def test_compiled_loops_refuse_mismatched_shapes() -> None:
    """The compiled loops do not check bounds, so their wrappers check every shape."""
    from market.aggregator.rules import coordinate_kernels as k

    q = np.ones((4, 10), np.int8)
    s = np.ones((4, 1), np.float32)
    keys = np.empty((10, 4), np.int32)
    with pytest.raises(AggregationError, match="keys must match"):
        k.order_keys(np.ascontiguousarray(q.T), s.T.copy(), 1024, 2, keys[:9])
    with pytest.raises(AggregationError, match="index bits"):
        k.order_keys(np.ascontiguousarray(q.T), s.T.copy(), 1024, 1, keys)
    with pytest.raises(AggregationError, match="scales"):
        k.masked_sum(q, np.ones((4, 2), np.float32), 1024, np.zeros(10), np.zeros(10))
    with pytest.raises(AggregationError, match="one interval"):
        k.masked_sum(q, s, 1024, np.zeros(9, np.float32), np.zeros(9, np.float32))
    with pytest.raises(AggregationError, match="cannot drop"):
        k.trimmed_bounds(keys, 2, 2)
    with pytest.raises(AggregationError, match="keys"):
        k.median_picks(keys[:9], 2, q, s, 1024)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    d=st.integers(1, 2100),
    levels=st.sampled_from([1, 2, 127]),
    shared_scales=st.booleans(),
    f_share=st.floats(0.0, 0.49),
)
def test_key_sorted_rules_match_the_sort_reference_on_random_batches(
    seed: int, n: int, d: int, levels: int, shared_scales: bool, f_share: float
) -> None:
    """Any n, d, few or many int8 levels, shared or distinct scales (ties or none): the
    median's and trimmed mean's bytes equal the plain sort's."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-levels, levels + 1, size=(n, d), dtype=np.int8)
    blocks = -(-d // 1024)
    if shared_scales:
        s = rng.choice(np.array([0.5, 2.0**-20, 1.0 + 2.0**-20], np.float32), (n, blocks))
    else:
        s = rng.uniform(1e-4, 1e-2, (n, blocks)).astype(np.float32)
    batch = QuantizedBatch(q, s)
    f = int(f_share * n) if n > 1 else 0
    med, med_mass, tm, tm_mass = sorted_reference(batch, f)
    both = run_rules(batch, [get_rule("median"), get_rule("trimmed_mean", f=f)])
    assert both["median"].aggregate.tobytes() == med.tobytes()
    assert both["trimmed_mean"].aggregate.tobytes() == tm.tobytes()
    assert np.allclose(both["median"].coefficients, med_mass, rtol=1e-12, atol=1e-15)
    assert np.allclose(both["trimmed_mean"].coefficients, tm_mass, rtol=1e-12, atol=1e-15)
