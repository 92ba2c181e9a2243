import numpy as np
import pytest

from market.aggregator.engine import run_rules
from market.aggregator.rules import RULES, get_rule, gram
from tests.aggregator.helpers import random_batch


def test_one_pass_gives_the_same_bytes_as_each_rule_alone() -> None:
    batch = random_batch(9, 5000, seed=1)
    ids = [f"t{i}" for i in range(9)]
    counts = np.arange(1, 10)
    rules = [get_rule(name) for name in RULES]
    together = run_rules(batch, rules, counts, ids=ids)
    for rule in rules:
        alone = get_rule(rule.name).aggregate(batch, counts, None, ids)
        both = together[rule.name]
        assert both.aggregate.tobytes() == alone.aggregate.tobytes(), rule.name
        assert np.array_equal(both.coefficients, alone.coefficients), rule.name
        assert both.flags == alone.flags, rule.name
    assert np.array_equal(together["krum"].gram, gram(batch))


def test_evidence_only_skips_the_second_pass() -> None:
    batch = random_batch(5, 3000, seed=2)
    out = run_rules(batch, [get_rule("krum"), get_rule("median")], aggregates=False)
    assert out["krum"].aggregate.size == 0 and out["median"].aggregate.shape == (3000,)


def test_each_pass_runs_only_when_a_rule_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Coordinate rules alone stream the chunks without a norms or Gram pass; rules that read
    only the norms skip the O(n²·d) Gram pass."""
    import market.aggregator.rules.gram_rule as gram_rule

    batch = random_batch(6, 4000, seed=3)
    calls: list[str] = []
    for name in ("gram", "gram_diagonal"):
        real = getattr(gram_rule, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(gram_rule, name, counted)
    alone = get_rule("trimmed_mean", f=1).aggregate(batch)
    both = run_rules(batch, [get_rule("median"), get_rule("trimmed_mean", f=1)])
    assert calls == [] and both["trimmed_mean"].aggregate.tobytes() == alone.aggregate.tobytes()
    run_rules(batch, [get_rule("median"), get_rule("centered_clipping", iterations=1)])
    assert calls == ["gram_diagonal"]
    run_rules(batch, [get_rule("median"), get_rule("krum")])
    assert calls == ["gram_diagonal", "gram"]
