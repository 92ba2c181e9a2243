"""`market demo` as a user runs it: a fresh anvil, real contracts, real training, real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MARKET = str(Path(sys.executable).parent / "market")

pytestmark = pytest.mark.slow


def test_demo_json_summary_balances_to_the_wei(tmp_path):
    proc = subprocess.run(
        [MARKET, "demo", "--json", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert summary["chain_id"] == 31337 and summary["project_id"] == 1
    assert len(summary["rounds"]) == 3 and len(summary["trainers"]) == 5
    for row in summary["rounds"]:
        assert {"round", "model_cid", "accuracy", "rewards_root", "finalize_gas"} <= set(row)
        assert row["model_cid"].startswith("bafkrei") and row["finalize_gas"] > 0
    # the escrow balances exactly: budget = claimed + refunded + still escrowed
    claimed = sum(t["claimed_wei"] for t in summary["trainers"])
    assert claimed == summary["claimed_wei"]
    assert summary["budget_wei"] == claimed + summary["refunded_wei"] + summary["escrowed_wei"]
    assert summary["balanced"] is True and summary["escrowed_wei"] == 0
    assert all(t["claimed_wei"] > 0 for t in summary["trainers"])
    # federated training on non-IID digits actually learns
    accuracies = [r["accuracy"] for r in summary["rounds"]]
    assert accuracies[-1] > summary["initial_accuracy"] + 0.5
    assert accuracies[-1] >= 0.8
    assert set(summary["gas"]) >= {
        "createProject",
        "openRound",
        "commitUpdate",
        "revealUpdate",
        "finalizeRound",
        "claim",
    }
    # the demo kept its artefacts: every model it reports is in the embedded store
    from market.storage import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    assert all(store.has(r["model_cid"]) for r in summary["rounds"])


def test_demo_human_output_ends_with_the_summary():
    proc = subprocess.run(
        [MARKET, "demo", "--rounds", "1", "--trainers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rewards claimed" in proc.stdout and "balanced" in proc.stdout
    assert "round 1: accuracy" in proc.stderr  # progress goes to stderr


def test_demo_rejects_impossible_configuration():
    proc = subprocess.run(
        [MARKET, "demo", "--trainers", "9"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_demo_with_zero_knowledge_proofs_finalizes_through_the_verifier():
    proc = subprocess.run(
        [MARKET, "demo", "--proof", "--rounds", "1", "--trainers", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["proof"] is True and summary["balanced"] is True
    assert "finalizeRoundWithProof" in summary["gas"] and "finalizeRound" not in summary["gas"]
    assert summary["rounds"][0]["finalize_gas"] > 250_000  # the Groth16 pairing check ran
