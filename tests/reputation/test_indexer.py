"""The reputation index follows a real anvil: reports from the store, restarts, reorgs."""

from __future__ import annotations

import pytest

from market.chain import revert, snapshot
from market.db import Database
from market.reputation import AdmissionPolicy, ReputationIndexer
from market.storage import EmbeddedStore
from tests.reputation.helpers import create_project, h, pay_round

POLICY = AdmissionPolicy(top_k=3, min_reputation=0.01, newcomer_quota=1)
BOOK = {"walks_per_seed": 500}


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "store")


@pytest.fixture
def db(tmp_path):
    return Database(f"sqlite:///{tmp_path / 'market.db'}")


def indexer(env, store, db, **kw) -> ReputationIndexer:
    return ReputationIndexer(env.market, store, db, book_options=BOOK, **kw)


def paid(env, n: int, amount: int = 10**17) -> dict[str, int]:
    return {t.address: amount * (i + 1) for i, t in enumerate(env.trainers[:n])}


@pytest.mark.slow
def test_rounds_become_feedback_and_a_restart_resumes_where_it_stopped(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    pay_round(env, store, pid, paid(env, 3))
    pay_round(env, store, pid, {env.trainers[0].address: 10**17})
    first = indexer(env, store, db)
    result = first.sync()
    assert (result.events, result.entries, result.rolled_back_to) == (3, 3, None)
    book = first.book
    assert book.projects[pid].policy == POLICY
    rep = book.reputation(pid)
    assert set(rep) == {t.address for t in env.trainers[:3]}
    assert rep[env.trainers[2].address] > rep[env.trainers[1].address]  # paid 3 vs 2

    restarted = indexer(env, store, db)  # replays the stored log, reads nothing again
    assert restarted.next_block == first.next_block
    assert restarted.book.reputation(pid) == rep
    assert restarted.sync().events == 0
    pay_round(env, store, pid, {env.trainers[3].address: 10**17})
    assert restarted.sync().events == 1
    assert env.trainers[3].address in restarted.book.reputation(pid)
    assert [e["kind"] for e in restarted.log_entries()] == ["project", *["rewards"] * 3]


@pytest.mark.slow
def test_a_report_missing_from_the_store_is_skipped_with_a_reason(market_env, store, db, tmp_path):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    other = EmbeddedStore(tmp_path / "elsewhere")  # a report the indexer's store lacks
    pay_round(env, other, pid, paid(env, 2))
    rnd = pay_round(env, store, pid, {env.trainers[2].address: 5})  # report stored
    ix = indexer(env, store, db)
    ix.sync()
    assert ix.book.rounds == {(pid, rnd)}
    assert [s["round"] for s in ix.skipped] == [1]
    assert "no blob" in ix.skipped[0]["reason"]
    # The same skips survive a restart (they are part of the stored log).
    assert indexer(env, store, db).skipped == ix.skipped


@pytest.mark.slow
def test_report_whose_table_does_not_match_the_chain_root_is_refused(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    rnd, _ = env.market.open_round(env.aggregator, pid, h("m"), b"\0" * 32)
    env.advance(201)
    from market.aggregator.report import RoundReport, SubmissionEntry
    from market.proofs.merkle import MerkleTree
    from market.storage.cid import digest_of_cid

    chain_root = MerkleTree.of_rewards([(env.trainers[0].address, 10)]).root
    report = RoundReport(
        env.w3.eth.chain_id, env.market.address, pid, rnd, "fedavg", {}, "", "", 10, 10,
        "0x" + chain_root.hex(),
        [SubmissionEntry(env.trainers[1].address, None, "accepted", None, 0.0, 0, 10)],
    )  # fmt: skip
    digest = digest_of_cid(store.put(report.to_bytes()))
    env.market.finalize_round(env.aggregator, pid, rnd, h("n"), digest, chain_root, 10)
    ix = indexer(env, store, db)
    ix.sync()
    assert ix.book.rounds == set()
    assert "rewardsRoot" in ix.skipped[0]["reason"]


@pytest.mark.slow
def test_reorg_rolls_back_to_the_fork_point(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    pay_round(env, store, pid, paid(env, 2))
    ix = indexer(env, store, db)
    ix.sync()
    fork_block = env.w3.eth.block_number
    snap = snapshot(env.w3)
    pay_round(env, store, pid, {env.trainers[4].address: 10**17})
    ix.sync()
    assert env.trainers[4].address in ix.book.reputation(pid)

    revert(env.w3, snap)  # the chain forgets round 2 ...
    pay_round(env, store, pid, {env.trainers[5].address: 10**17})  # ... and mines another
    result = ix.sync()
    assert result.rolled_back_to is not None and result.rolled_back_to <= fork_block
    rep = ix.book.reputation(pid)
    assert env.trainers[4].address not in rep and env.trainers[5].address in rep
    assert [e["kind"] for e in ix.log_entries()] == ["project", "rewards", "rewards"]
    fresh = indexer(env, store, db.__class__(db.url))  # a restart sees the repaired log
    assert fresh.book.reputation(pid) == rep


@pytest.mark.slow
def test_reorg_below_every_entry_rebuilds_from_scratch(market_env, store, db):
    env = market_env
    start = env.w3.eth.block_number + 1
    snap = snapshot(env.w3)
    pid = create_project(env, store, env.owner, POLICY)
    pay_round(env, store, pid, paid(env, 2))
    ix = indexer(env, store, db, start_block=start)
    ix.sync()
    revert(env.w3, snap)
    pid2 = create_project(env, store, env.trainers[6], None)
    env.advance(1)
    env.advance(1)
    env.advance(1)
    env.advance(1)  # the new chain is taller than the old one: only hashes tell them apart
    result = ix.sync()
    assert result.rolled_back_to == -1
    assert set(ix.book.projects) == {pid2}
    assert ix.book.projects[pid2].policy is None
    assert ix.book.rounds == set()
