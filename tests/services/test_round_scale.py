"""Smoke test of the round-scale benchmark (quick mode: 10 trainers, a small model)."""

from __future__ import annotations

import pytest

from benchmarks.round_scale import run

pytestmark = pytest.mark.slow


def test_quick_round_scale_finalizes_every_update(tmp_path):
    result = run(quick=True, out_dir=tmp_path)
    assert (tmp_path / "round_scale.json").exists()
    assert result["finalized"] == "FINALIZED"
    assert result["accepted"] == result["trainers"] == 10
    assert result["transactions"] == 22 and result["tx_per_s"] > 0
    assert result["aggregator_peak_rss_mib"] >= result["aggregator_rss_after_open_mib"] > 0
