"""Smoke tests for the benchmark code paths (tiny sizes; the real runs are `make bench`)."""

import numpy as np
import pytest

from benchmarks.aggregation_speed import one_config
from benchmarks.fl_sim import MLP, load_digits_split
from benchmarks.robustness import (
    Row,
    honest_only_fedavg,
    ours,
    reference_row,
    simulate,
    summarise,
)


@pytest.mark.slow
def test_speed_config_runs_and_reports_every_rule() -> None:
    out = one_config(6, 3000, 0, 1, True)
    assert out["floor_gram_s"] > 0 and "all_rules_speedup" in out
    assert "speedup" in out["rules"]["krum"] and "ours_s" in out["rules"]["guard"]


@pytest.mark.slow
def test_simulator_learns_and_attack_rows_run() -> None:
    split = load_digits_split(8, 1.0, 0)
    mlp = MLP()
    w = mlp.init(0)
    before = mlp.accuracy(w, split.x_test, split.y_test)
    acc, _ = simulate(split, Row(1.0, "none"), ours("fedavg", {}), 5, 0)
    assert acc > before + 0.2
    acc, share = simulate(split, Row(1.0, "sign_flip"), ours("guard", {}), 2, 0)
    assert 0.0 <= share <= 1.0 and np.isfinite(acc)
    rows = [
        {
            "rule": "r",
            "attack": "sign_flip",
            "noise": False,
            "alpha": 1.0,
            "sybils": 0,
            "final_accuracy": 0.5,
            "honest_only_fedavg": 0.6,
            "clean_fedavg": 0.7,
            "attacker_weight_share": 0.1,
        }
    ]
    assert summarise(rows)["r"]["worst_gap_to_honest_only"] == 0.1


def test_rows_sharing_a_reference_run_get_the_same_honest_only_accuracy() -> None:
    """The robustness grid computes each honest-only FedAvg once per reference row: every
    row mapped to one must give the same number computed on its own."""
    for row in [Row(0.1, "alie", noise=True), Row(0.1, "min_max"), Row(0.1, "sybil", sybils=30)]:
        assert honest_only_fedavg(row, 0, 3) == honest_only_fedavg(reference_row(row), 0, 3)
    assert reference_row(Row(0.1, "label_flip", noise=True)) == Row(0.1, "label_flip")
