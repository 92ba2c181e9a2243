"""A demo variant with a Sybil crowd, on a real anvil, the embedded store and SQLite.

History: the owner's first project pays three honest trainers and one attacker for a round
of real training (real aggregator, real round report). The attacker then runs a project of
his own that pays eight Sybil identities, and a crowd of fresh identities appears. When the
owner's second project — with a MeritRank admission policy — opens a round, everyone
applies: the honest trainers get in, the paid Sybils are refused (their reputation, bounded
by the attacker's one edge, is under the minimum), at most ``newcomer_quota`` fresh
identities get in, and the contract refuses commitments from the refused ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from eth_account import Account

from market.aggregator.service import Aggregator
from market.chain import ContractRevert, compute_commitment, send_transaction
from market.db import Database
from market.errors import ReputationError
from market.owner import Windows, create_project
from market.reputation import (
    AdmissionPolicy,
    ReputationIndexer,
    open_round_with_admission,
    record_application,
    sign_application,
)
from market.storage import EmbeddedStore
from market.trainer.client import TrainerClient
from market.trainer.data import load_dataset
from market.trainer.model import ModelSpec
from tests.reputation.helpers import create_project as create_bare_project
from tests.reputation.helpers import h, pay_round

pytestmark = pytest.mark.slow

POLICY = AdmissionPolicy(top_k=6, min_reputation=0.01, newcomer_quota=1)
WINDOWS = Windows(100, 100, 100)


def run_round(env, aggregator, clients, pid: int, number: int, data) -> None:
    """Train, commit (proofs fetched by the clients), reveal and finalize one round."""
    for i, client in enumerate(clients):
        client.prepare(pid, number, data.subset(np.arange(i * 80, (i + 1) * 80)), seed=i)
        client.commit(pid, number)
    chain_round = env.market.get_round(pid, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    for client in clients:
        client.reveal(pid, number)
    env.advance(chain_round.reveal_deadline - env.now() + 1)
    aggregator.finalize_round(pid, number)


def test_a_sybil_crowd_is_refused_while_honest_trainers_get_in(market_env, tmp_path):
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    db = Database(f"sqlite:///{tmp_path / 'market.db'}")
    data = load_dataset("digits")
    aggregator = Aggregator(env.market, store, env.aggregator, db)
    honest, attacker = env.trainers[:3], env.trainers[3]
    clients = {a.address: TrainerClient(env.market, store, a, db) for a in env.trainers}

    def new_project(policy: AdmissionPolicy | None) -> int:
        return create_project(
            env.market, store, env.owner, aggregator=env.aggregator.address, rounds=2,
            reward_per_round_wei=10**18, windows=WINDOWS, name="digits", seed=0,
            model=ModelSpec(hidden=(8,)), admission=policy.to_dict() if policy else None,
        ).project_id  # fmt: skip

    # 1. The owner's open project: a round of real work by honest trainers and the attacker.
    first = new_project(None)
    indexer = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 4000})
    number, _, record = open_round_with_admission(aggregator, indexer, first)
    assert record.root == b"\0" * 32
    run_round(
        env, aggregator, [clients[a.address] for a in [*honest, attacker]], first, number, data
    )

    # 2. The attacker's own project (he is its aggregator too) pays eight Sybils, which
    #    also pay each other; a crowd of fresh identities appears.
    sybils = [Account.from_key(bytes([0x60 + i]) * 32) for i in range(8)]
    crowd = [Account.from_key(bytes([0x80 + i]) * 32) for i in range(6)]
    own = create_bare_project(env, store, attacker, None, aggregator=attacker)
    pay_round(env, store, own, {s.address: 10**17 for s in sybils}, aggregator=attacker)
    for s in sybils[:2]:  # gas for two Sybils: one runs a project, both try to commit
        send_transaction(env.w3, env.outsider, {"to": s.address, "value": 10**18})
    ring = create_bare_project(env, store, sybils[0], None, reward=10**15, aggregator=sybils[0])
    pay_round(env, store, ring, {s.address: 10**14 for s in sybils[1:]}, aggregator=sybils[0])

    # 3. The owner's second project has a MeritRank policy; everyone applies to round 1.
    second = new_project(POLICY)
    newcomer = env.trainers[5]
    applicants = [*honest, attacker, *sybils, *crowd, newcomer]
    for a in applicants:
        app = sign_application(a, second, 1, env.w3.eth.chain_id, env.market.address)
        record_application(db, app)
    number, _, record = open_round_with_admission(aggregator, indexer, second)
    adm = record.admission
    assert env.market.get_round(second, number).admission_root == adm.root
    assert set(a.address for a in honest) <= set(adm.established)
    assert not set(s.address for s in sybils) & set(adm.admitted)
    assert all("below the minimum" in adm.refused[s.address] for s in sybils)
    fresh = {a.address for a in [*crowd, newcomer]}
    assert len(fresh & set(adm.admitted)) <= POLICY.newcomer_quota
    rep = indexer.book.reputation(second)
    sybil_mass = sum(rep.get(s.address, 0.0) for s in sybils)
    assert sybil_mass < min(rep[a.address] for a in honest)  # the whole region < one honest

    # 4. The contract agrees: admitted clients commit with proofs they fetch themselves;
    #    refused ones cannot get a proof, and stolen or empty proofs revert NotAdmitted.
    # a Sybil is always refused (asserted above); whether the fresh newcomer wins the
    # lottery depends on the seed block's hash, so don't rely on it here
    refused_client = TrainerClient(env.market, store, sybils[0], db)
    with pytest.raises(ReputationError, match="not admitted"):
        refused_client.admission_proof(second, number)
    stolen = adm.proof_for(honest[0].address)
    for s in sybils[:2]:
        commitment = compute_commitment(h("copy"), s.address, h("salt"))
        for proof in (stolen, []):
            with pytest.raises(ContractRevert) as info:
                env.market.commit_update(s, second, number, commitment, proof)
            assert info.value.error_name == "NotAdmitted"
    admitted_clients = [clients[a] for a in adm.admitted if a in clients]
    run_round(env, aggregator, admitted_clients, second, number, data)

    # 5. The finalized round feeds back: the index picks it up, after a restart too.
    indexer.sync()
    assert (second, number) in indexer.book.rounds
    restarted = ReputationIndexer(env.market, store, db, book_options={"walks_per_seed": 4000})
    assert restarted.book.reputation(second) == indexer.book.reputation(second)
