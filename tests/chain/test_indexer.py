"""The event indexer: every market event, in chain order, resumable, chunked."""

from __future__ import annotations

from chain_helpers import digest

from market.chain import EventIndexer
from market.proofs import MerkleTree


def test_indexer_returns_all_events_in_order_and_resumes(market_env, revealed_round):
    env, m = market_env, market_env.market
    start = env.w3.eth.block_number + 1
    indexer = EventIndexer(m, start_block=start, chunk=3)
    assert indexer.poll() == []

    pid, rnd, updates = revealed_round(n=2, rounds=1)
    first = indexer.poll()
    names = [e["event"] for e in first]
    assert (
        names
        == ["ProjectCreated", "RoundOpened"] + ["UpdateCommitted"] * 2 + ["UpdateRevealed"] * 2
    )
    keys = [(e["block_number"], e["log_index"]) for e in first]
    assert keys == sorted(keys)
    assert all(e["timestamp"] > 0 for e in first)
    assert first[0]["args"]["project_id"] == pid

    env.advance(101)
    tree = MerkleTree.of_rewards([(updates[0].trainer.address, 5)])
    m.finalize_round(env.aggregator, pid, rnd, digest("m"), digest("r"), tree.root, 5)
    m.claim(updates[0].trainer, pid, rnd, 5, tree.proof(0))
    second = indexer.poll()
    assert [e["event"] for e in second] == ["RoundFinalized", "RewardClaimed"]
    assert indexer.poll() == []  # nothing new

    # a fresh indexer from the same start sees the same history in one pass
    again = EventIndexer(m, start_block=start, chunk=1000).poll()
    assert again == first + second


def test_indexer_confirmations_and_max_blocks(market_env):
    env, m = market_env, market_env.market
    start = env.w3.eth.block_number + 1
    env.create_project()
    env.create_project()
    lagging = EventIndexer(m, start_block=start, confirmations=1)
    assert [e["args"]["project_id"] for e in lagging.poll()] == [1]
    stepwise = EventIndexer(m, start_block=start)
    assert len(stepwise.poll(max_blocks=1)) == 1
    assert len(stepwise.poll(max_blocks=1)) == 1
    assert stepwise.poll() == []
