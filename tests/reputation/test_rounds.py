"""Admission rounds on a real anvil: applications → published list → root on chain → proofs."""

from __future__ import annotations

import pytest
from eth_account import Account

from market.chain import ZERO32, compute_commitment
from market.db import Database
from market.errors import ReputationError
from market.proofs.merkle import MerkleTree
from market.reputation import (
    AdmissionPolicy,
    ReputationIndexer,
    admission_proof,
    load_admission,
    open_round_with_admission,
    publish_admission,
    record_application,
    sign_application,
    stored_applications,
    verify_admission,
)
from market.reputation.admission import Admission
from market.reputation.rounds import compute_admission
from market.spec import canonical_json
from market.storage import EmbeddedStore
from tests.reputation.helpers import create_project, h, pay_round

POLICY = AdmissionPolicy(top_k=3, min_reputation=0.01, newcomer_quota=1)


class Opener:
    """Opens rounds straight on the contract (the aggregator's job, minus its model)."""

    def __init__(self, env) -> None:
        self.env = env

    def open_round(self, project_id: int, admission_root: bytes = ZERO32):
        return self.env.market.open_round(
            self.env.aggregator, project_id, h("model"), admission_root
        )


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "store")


@pytest.fixture
def db(tmp_path):
    return Database(f"sqlite:///{tmp_path / 'market.db'}")


def apply(env, db, accounts, pid: int, rnd: int) -> None:
    chain_id = env.w3.eth.chain_id
    for a in accounts:
        record_application(db, sign_application(a, pid, rnd, chain_id, env.market.address))


def commit(env, trainer, pid: int, rnd: int, proof: list[bytes]):
    c = compute_commitment(h(f"u{trainer.address}"), trainer.address, h("salt"))
    return env.market.commit_update(trainer, pid, rnd, c, proof)


@pytest.mark.slow
def test_a_round_opens_with_the_published_admission_and_proofs_check(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    honest = env.trainers[:3]
    pay_round(env, store, pid, {t.address: 10**17 for t in honest})
    crowd = [Account.from_key(bytes([0x40 + i]) * 32) for i in range(6)]  # fresh identities
    newcomer = env.trainers[5]
    apply(env, db, [*honest, newcomer, *crowd], pid, 2)
    assert len(stored_applications(db, env.market, pid, 2)) == 10
    ix = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 1000})

    number, _, record = open_round_with_admission(Opener(env), ix, pid)
    assert number == 2 and record.round == 2
    assert env.market.get_round(pid, 2).admission_root == record.root
    adm = record.admission
    assert adm.established == sorted((t.address for t in honest), key=lambda a: int(a, 16))
    assert len(adm.newcomers) == 1  # quota: one of the seven unknown applicants
    assert len(adm.refused) == 6
    doc = record.document
    assert doc["seed_block"] == ix.last_block and len(doc["applications"]) == 10

    loaded, _ = load_admission(store, env.market, pid, 2, db=db)  # CID found by round
    assert loaded == adm
    check = verify_admission(env.market, store, pid, 2, db=db)  # from the chain alone
    assert check["ok"], check["problems"]
    for t in honest:
        proof = admission_proof(store, env.market, t.address, pid, 2, cid=record.cid)
        commit(env, t, pid, 2, proof)
    refused = next(a for a in [newcomer, *crowd] if a.address in adm.refused)
    with pytest.raises(ReputationError, match="newcomer quota"):
        admission_proof(store, env.market, refused.address, pid, 2, db=db)


@pytest.mark.slow
def test_a_document_for_another_root_is_refused(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    pay_round(env, store, pid, {env.trainers[0].address: 10**17})
    apply(env, db, env.trainers[:2], pid, 2)
    ix = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 200})
    record = publish_admission(ix, pid)  # published, but the round opens with another root
    env.market.open_round(env.aggregator, pid, h("model"), h("other root"))
    with pytest.raises(ReputationError, match="not this round's list"):
        load_admission(store, env.market, pid, 2, cid=record.cid)
    unindexed = create_project(env, store, env.owner, POLICY)
    env.market.open_round(env.aggregator, unindexed, h("model"), h("root"))
    with pytest.raises(ReputationError, match="--admission-cid"):
        load_admission(store, env.market, unindexed, 1, db=db)


@pytest.mark.slow
def test_open_projects_get_the_zero_root_and_a_late_round_is_caught(market_env, store, db):
    env = market_env
    open_pid = create_project(env, store, env.owner, None)
    ix = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 200})
    number, _, record = open_round_with_admission(Opener(env), ix, open_pid)
    assert (record.root, record.cid, record.admission) == (ZERO32, None, None)
    assert admission_proof(store, env.market, env.trainers[0].address, open_pid, number) == []
    commit(env, env.trainers[0], open_pid, number, [])

    pid = create_project(env, store, env.owner, POLICY)

    class Racing(Opener):  # someone opens a round between computing and opening
        def open_round(self, project_id, admission_root=ZERO32):
            first, _ = super().open_round(project_id, ZERO32)
            env.advance(400)
            env.market.expire_round(env.aggregator, project_id, first)
            return super().open_round(project_id, admission_root)

    with pytest.raises(ReputationError, match="recompute"):
        open_round_with_admission(Racing(env), ix, pid)


@pytest.mark.slow
def test_a_list_that_does_not_follow_from_the_chain_fails_verification(market_env, store, db):
    env = market_env
    pid = create_project(env, store, env.owner, POLICY)
    pay_round(env, store, pid, {env.trainers[0].address: 10**17})
    sybil = Account.from_key(b"\x77" * 32)
    apply(env, db, [env.trainers[0], sybil], pid, 2)
    ix = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 300})
    _, doc = compute_admission(ix, pid, 2)
    # A dishonest service admits an extra Sybil and publishes a consistent-looking document.
    admitted = sorted([env.trainers[0].address, sybil.address, env.trainers[4].address])
    tree = MerkleTree.of_addresses(admitted)
    forged = Admission(
        admitted, admitted, [], {}, tree.root, {a: tree.proof_for(a) for a in admitted}
    )
    doc["admission"] = forged.to_json()
    cid = store.put(canonical_json(doc))
    env.market.open_round(env.aggregator, pid, h("model"), forged.root)
    assert load_admission(store, env.market, pid, 2, cid=cid)[0] == forged  # root matches
    check = verify_admission(env.market, store, pid, 2, cid=cid)
    assert not check["ok"] and "differs" in check["problems"][0]
