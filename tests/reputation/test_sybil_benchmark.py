"""The Sybil-tolerance benchmark's quick mode, as CI runs it (kept well under 20 s)."""

import importlib.util
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "reputation.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_reputation", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_shows_bounded_sybil_region_and_quota(tmp_path):
    bench = load_benchmark()
    t0 = time.perf_counter()
    result = bench.run(quick=True, out_dir=tmp_path)
    assert time.perf_counter() - t0 < 20
    assert (tmp_path / "reputation.json").exists() and (tmp_path / "reputation.png").exists()
    quota = result["parameters"]["policy"]["newcomer_quota"]
    connected = [s for s in result["scenarios"] if not s["fresh_flood"]]
    flood = [s for s in result["scenarios"] if s["fresh_flood"]]
    # The region's raw mass does not depend on S (same walks reach the attacker)...
    raws = [s["rounds"][0]["sybil_region_raw_reputation"] for s in connected]
    assert max(raws) - min(raws) < 1e-12
    # ... and stays near its exact bound, P(walk reaches the attacker).
    for s in connected:
        assert s["rounds"][0]["sybil_region_raw_reputation"] < 2 * s["region_bound"]
        for r in s["rounds"]:  # connected Sybils are known: only the minimum can admit them
            assert r["sybils_admitted"] <= r["admissible_bound"]
            assert r["sybils_admitted_as_newcomers"] == 0
        assert s["honest_newcomers_still_waiting"] <= 3  # only the last round's may wait
    for s in flood:
        news = [r["sybils_admitted_as_newcomers"] for r in s["rounds"]]
        assert max(news) <= quota
    assert result["update_time"]["new_round"]["other_owner"]["seconds"] < 1.0
