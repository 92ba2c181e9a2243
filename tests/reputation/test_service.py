import pytest
from eth_account import Account

from market.errors import ReputationError
from market.proofs.merkle import MerkleTree
from market.reputation import (
    AdmissionPolicy,
    ReputationBook,
    epoch_of,
    sign_application,
)

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN = 31337
OWNER = Account.from_key(b"\x01" * 32)
TRAINERS = [Account.from_key(bytes([i + 2]) * 32) for i in range(4)]
NEWCOMER = Account.from_key(b"\x09" * 32)
SEED = b"\x05" * 32


def rewards_of(accounts, amount=100):
    return {a.address: amount for a in accounts}


def book_with_history() -> ReputationBook:
    book = ReputationBook(walks_per_seed=2000)
    book.add_project(
        1, OWNER.address, AdmissionPolicy(top_k=2, min_reputation=0.01, newcomer_quota=1)
    )
    for r in range(2):
        table = rewards_of(TRAINERS[:3]) | {TRAINERS[0].address: 300}
        root = MerkleTree.of_rewards(list(table.items())).root
        book.record_rewards(1, r, table, epoch=epoch_of(86_400 * (r + 1)), rewards_root=root)
    return book


def test_rewards_become_owner_to_trainer_feedback_and_rank_trainers():
    book = book_with_history()
    rep = book.reputation(1)
    assert set(rep) == {t.address for t in TRAINERS[:3]}
    assert rep[TRAINERS[0].address] > rep[TRAINERS[1].address]
    assert book.reputation_of(TRAINERS[3].address, 1) == 0.0
    assert book.summary()["rounds"] == 2 and book.summary()["projects"] == 1


def test_reward_table_must_match_the_chain_root_and_count_once():
    book = book_with_history()
    table = rewards_of(TRAINERS[:2])
    wrong = MerkleTree.of_rewards(list(rewards_of(TRAINERS[:1]).items())).root
    with pytest.raises(ReputationError, match="rewardsRoot"):
        book.record_rewards(1, 5, table, epoch=3, rewards_root=wrong)
    with pytest.raises(ReputationError, match="already recorded"):
        book.record_rewards(1, 0, table, epoch=3)
    with pytest.raises(ReputationError, match="unknown"):
        book.record_rewards(2, 0, table, epoch=3)
    events = book.record_rewards(1, 6, table | {OWNER.address: 5, TRAINERS[3].address: 0}, 3)
    assert {e.trainer for e in events} == {t.address for t in TRAINERS[:2]}  # no self, no zero


def test_admission_from_signed_applications():
    book = book_with_history()
    apps = [sign_application(a, 1, 2, CHAIN, MARKET) for a in [*TRAINERS, NEWCOMER]]
    forged = sign_application(NEWCOMER, 1, 2, CHAIN, MARKET)
    forged = type(forged)(1, 2, TRAINERS[2].address, CHAIN, MARKET, forged.signature)
    out, dropped = book.admission(1, 2, [forged, *apps], SEED, CHAIN, MARKET)
    assert TRAINERS[0].address in out.established and len(out.established) == 2
    assert len(out.newcomers) == 1  # TRAINERS[3] and NEWCOMER are unknown: one drawn
    assert dropped == {}  # TRAINERS[2]'s own valid application supersedes the forged one
    again, _ = book.admission(1, 2, list(reversed(apps)), SEED, CHAIN, MARKET)
    assert again == out


def test_replaying_the_same_events_rebuilds_the_same_admission():
    a, b = book_with_history(), book_with_history()
    apps = [sign_application(t, 1, 2, CHAIN, MARKET) for t in TRAINERS]
    assert a.admission(1, 2, apps, SEED, CHAIN, MARKET) == b.admission(
        1, 2, apps, SEED, CHAIN, MARKET
    )


def test_open_projects_have_no_list():
    book = ReputationBook(walks_per_seed=10)
    book.add_project(3, OWNER.address)
    with pytest.raises(ReputationError, match="open admission"):
        book.admission(3, 0, [], SEED, CHAIN, MARKET)
    with pytest.raises(ReputationError):
        book.add_project(3, OWNER.address)


def test_replaying_the_log_after_a_restart_rebuilds_the_same_book():
    import json

    book = book_with_history()
    stored = json.loads(json.dumps(book.log))  # what the indexer keeps in its table
    restarted = ReputationBook(walks_per_seed=2000)
    restarted.replay(stored)
    apps = [sign_application(t, 1, 2, CHAIN, MARKET) for t in TRAINERS]
    assert restarted.reputation(1) == book.reputation(1)
    assert restarted.admission(1, 2, apps, SEED, CHAIN, MARKET) == book.admission(
        1, 2, apps, SEED, CHAIN, MARKET
    )
    with pytest.raises(ReputationError):
        restarted.replay([{"kind": "nonsense"}])
