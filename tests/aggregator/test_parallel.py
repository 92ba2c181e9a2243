"""Worker threads change the speed of a pass, never its bytes."""

import numpy as np
import pytest

from market.aggregator.engine import run_rules
from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.parallel import THREADS_ENV, aggregation_threads
from market.errors import ConfigError

RULES = ["median", "trimmed_mean", "krum", "geometric_median", "guard", "foolsgold", "fedavg"]


def _run(monkeypatch: pytest.MonkeyPatch, threads: int, batch: QuantizedBatch) -> dict:
    monkeypatch.setenv(THREADS_ENV, str(threads))
    ids = [f"t{i}" for i in range(batch.n)]
    return run_rules(batch, [get_rule(name) for name in RULES], ids=ids)


def test_results_are_bit_identical_for_any_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    # 300k columns: several chunks, and many pieces per chunk for every pass.
    dense = rng.normal(size=(20, 300_000)) * rng.uniform(0.1, 3.0, size=(20, 1))
    batch = QuantizedBatch.from_dense(dense, rng=rng)
    one = _run(monkeypatch, 1, batch)
    for threads in (2, 3):
        other = _run(monkeypatch, threads, batch)
        for name in RULES:
            a, b = one[name], other[name]
            assert a.aggregate.tobytes() == b.aggregate.tobytes(), (name, threads)
            assert a.coefficients.tobytes() == b.coefficients.tobytes(), (name, threads)
            if a.gram is not None:
                assert a.gram.tobytes() == b.gram.tobytes()


def test_norms_only_pass_is_bit_identical_too(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    batch = QuantizedBatch.from_dense(rng.normal(size=(30, 200_000)), rng=rng)
    # One clipping step from 0 reads only the norms: the O(n·d) diagonal pass.
    rule = get_rule("centered_clipping", iterations=1, init="zero", tau=50.0)
    results = []
    for threads in (1, 2):
        monkeypatch.setenv(THREADS_ENV, str(threads))
        results.append(rule.aggregate(batch))
    assert results[0].gram is None  # it did take the norms-only pass
    assert results[0].aggregate.tobytes() == results[1].aggregate.tobytes()
    assert results[0].coefficients.tobytes() == results[1].coefficients.tobytes()


def test_thread_count_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert aggregation_threads() == 3
    monkeypatch.delenv(THREADS_ENV)
    assert 1 <= aggregation_threads() <= 4
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ConfigError, match="MARKET_AGGREGATION_THREADS"):
        aggregation_threads()
