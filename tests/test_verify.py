"""``market verify`` on real anvil rounds: a clean round verifies, every tampering is named."""

from __future__ import annotations

import dataclasses
import json
import secrets

import numpy as np
import pytest
from typer.testing import CliRunner

from market.aggregator.report import RoundReport
from market.aggregator.service import Aggregator, layout_of
from market.cli import app
from market.db import Database
from market.owner import Windows, create_project
from market.proofs.verify import verify_round
from market.storage import EmbeddedStore, encode_update
from market.storage.cid import cid_of, digest_of_cid
from market.trainer.model import ModelSpec

WINDOWS = Windows(submission=100, reveal=100, finalize=1000)


@pytest.fixture
def round_ready(market_env, tmp_path):
    """A project whose round 1 has 4 revealed updates (3 aligned, 1 noise) and 1 bad file,
    with the reveal window closed: ready to finalize, honestly or not."""
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    created = create_project(
        env.market,
        store,
        env.owner,
        aggregator=env.aggregator.address,
        rounds=1,
        reward_per_round_wei=10**18,
        windows=WINDOWS,
        name="verify",
        model=ModelSpec(hidden=(8,)),
        rule="geometric_median",
    )
    pid = created.project_id
    layout = layout_of(created.spec)
    agg = Aggregator(env.market, store, env.aggregator, Database.at(tmp_path))
    number, _ = agg.open_round(pid)
    rng = np.random.default_rng(0)
    direction = rng.normal(size=layout.size) * 0.01
    blobs = [
        encode_update(layout.unflatten(direction + 0.003 * rng.normal(size=layout.size)), layout, i)
        for i in range(3)
    ]
    blobs.append(encode_update(layout.unflatten(0.01 * rng.normal(size=layout.size)), layout, 9))
    blobs.append(b"not a safetensors file")
    commit_and_reveal(env, store, pid, number, blobs)
    return env, store, agg, pid, number


def commit_and_reveal(env, store, pid: int, number: int, blobs: list[bytes]) -> None:
    """Trainer i commits then reveals blob i; both windows are closed afterwards."""
    reveals = []
    for account, blob in zip(env.trainers, blobs, strict=False):
        salt = secrets.token_bytes(32)
        digest = digest_of_cid(store.put(blob))
        commitment = env.market.compute_commitment(digest, account.address, salt)
        env.market.commit_update(account, pid, number, commitment, [])
        reveals.append((account, digest, salt))
    env.advance(WINDOWS.submission + 1)
    for account, digest, salt in reveals:
        env.market.reveal_update(account, pid, number, digest, salt)
    env.advance(WINDOWS.reveal + 1)


def finalize_with(env, store, agg, pid, number, report: RoundReport, model_digest=None):
    """Publish ``report`` as it is and finalize the round on chain with it."""
    report_cid = store.put(report.to_bytes())
    env.market.finalize_round(
        env.aggregator,
        pid,
        number,
        model_digest or digest_of_cid(report.new_model),
        digest_of_cid(report_cid),
        bytes.fromhex(report.rewards_root[2:]),
        report.total_wei,
    )


def test_a_clean_round_verifies(round_ready, tmp_path):
    env, store, agg, pid, number = round_ready
    outcome = agg.finalize_round(pid, number)
    statuses = [s.status for s in outcome.report.submissions]
    assert statuses.count("rejected") == 1 and len(statuses) == 5
    result = verify_round(env.market, store, pid, number)
    assert result.ok, result.failed()
    names = {c.name for c in result.checks if c.ok}
    assert {"scores", "rewards", "rewards root", "new model", "sketches", "gram"} <= names
    assert "rule re-solve" in names

    # the same through the command line, as JSON and as a table
    runner = CliRunner()
    args = ["verify", "--project", str(pid), "--round", str(number), "--rpc-url"]
    args += [env.node.rpc_url, "--store", f"embedded:{tmp_path / 'store'}"]
    args += ["--data-dir", str(tmp_path), "--contract", env.market.address]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ok"] is True
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "VERIFIED" in res.output


def _failed(env, store, pid, number) -> dict[str, str]:
    result = verify_round(env.market, store, pid, number)
    assert not result.ok
    return {c.name: c.detail for c in result.failed()}


def test_an_altered_score_fails_naming_the_trainer(round_ready, tmp_path):
    env, store, agg, pid, number = round_ready
    report, model, _ = agg.compute_round(pid, number)
    store.put(model)
    victim = report.batch_order[1]
    subs = [
        dataclasses.replace(s, score_points=s.score_points + 1) if s.trainer == victim else s
        for s in report.submissions
    ]
    finalize_with(env, store, agg, pid, number, dataclasses.replace(report, submissions=subs))
    failed = _failed(env, store, pid, number)
    # the scores, and the split (hence root and total) recomputed from them, differ
    assert {"scores", "rewards"} <= set(failed) and "new model" not in failed
    assert victim in failed["scores"] and "score points" in failed["scores"]

    res = CliRunner().invoke(
        app,
        ["verify", "-p", str(pid), "-r", str(number), "--rpc-url", env.node.rpc_url]
        + ["--store", f"embedded:{tmp_path / 'store'}", "--contract", env.market.address],
    )
    assert res.exit_code == 1 and "MISMATCH" in res.output


def test_a_swapped_update_fails(round_ready):
    env, store, agg, pid, number = round_ready
    report, model, _ = agg.compute_round(pid, number)
    store.put(model)
    a, b = report.batch_order[0], report.batch_order[2]
    cids = {s.trainer: s.update_cid for s in report.submissions}
    subs = [
        dataclasses.replace(s, update_cid=cids[b] if s.trainer == a else cids[a])
        if s.trainer in (a, b)
        else s
        for s in report.submissions
    ]
    finalize_with(env, store, agg, pid, number, dataclasses.replace(report, submissions=subs))
    failed = _failed(env, store, pid, number)
    assert "updates and validation" in failed
    assert (
        a in failed["updates and validation"]
        and "not the one revealed" in failed["updates and validation"]
    )


def test_a_wrong_model_cid_fails(round_ready):
    env, store, agg, pid, number = round_ready
    report, model, _ = agg.compute_round(pid, number)
    other = cid_of(model + b"\0")
    finalize_with(env, store, agg, pid, number, dataclasses.replace(report, new_model=other))
    failed = _failed(env, store, pid, number)
    assert set(failed) == {"new model"}
    assert other in failed["new model"] and report.new_model in failed["new model"]


def test_a_wrong_rewards_root_fails(round_ready):
    env, store, agg, pid, number = round_ready
    report, model, _ = agg.compute_round(pid, number)
    store.put(model)
    wrong = "0x" + "ee" * 32
    finalize_with(env, store, agg, pid, number, dataclasses.replace(report, rewards_root=wrong))
    failed = _failed(env, store, pid, number)
    assert set(failed) == {"rewards root"}
    assert wrong in failed["rewards root"] and report.rewards_root in failed["rewards root"]


def test_an_open_round_does_not_verify(round_ready):
    env, store, _, pid, number = round_ready
    result = verify_round(env.market, store, pid, number)
    assert not result.ok and result.failed()[0].name == "round finalized"
