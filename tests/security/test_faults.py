"""Faults during a round: the store (a real IPFS node) down, the chain RPC down. Each ends
in a clear error with nothing sent, and a retry once the service is back resumes the round:
every honest trainer is paid exactly once. (Processes SIGKILLed mid-finalize or mid-upload:
tests/services/test_crash.py, the one crash mechanism, MARKET_TEST_CRASH_AT.)"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading

import pytest

from market.aggregator.service import Aggregator, layout_of
from market.chain import LearningMarket, RoundState, connect
from market.db import Database
from market.errors import ChainError, ConfigError, MarketError, StorageError
from market.owner import Windows, create_project
from market.storage import EmbeddedStore
from market.storage.cid import cid_of, digest_of_cid, normalize_cid
from market.storage.ipfs import IpfsNodeStore, NodeUnavailableError
from market.storage.ipfs_daemon import IpfsDaemon, install_node
from market.storage.resolve import cid_candidates
from market.trainer.client import TrainerClient
from market.trainer.model import ModelSpec
from tests.security.corpus import valid_update

pytestmark = pytest.mark.slow
REWARD = 10**18


class TcpSwitch:
    """A TCP forwarder on 127.0.0.1 in front of a service, that can be switched off (every
    connection dropped, new ones refused) and on again at the same port: the service
    vanishes for the client, with its state intact behind."""

    def __init__(self, target_port: int, trip_on: tuple[bytes, ...] = ()) -> None:
        self.target = target_port
        self.trip_on = trip_on  # drop any connection whose request carries one of these
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._server.close()
            self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if self._server is not server:  # switched off meanwhile
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._conns += [client, upstream]
            for a, b, look in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, look), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, look: bool) -> None:
        try:
            while data := src.recv(65536):
                if look and any(t in data for t in self.trip_on):
                    return  # the finally below drops this connection (a flaky node)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def _project(env, store):
    return create_project(
        env.market,
        store,
        env.owner,
        aggregator=env.aggregator.address,
        rounds=2,
        reward_per_round_wei=REWARD,
        windows=Windows(submission=1000, reveal=1000, finalize=1000),
        name="faults",
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 32},
        max_update_bytes=200_000,
    )


def _submit(env, market: LearningMarket, store, project, number, trainers):
    """Each trainer commits, uploads and reveals a valid update; clock past the reveal."""
    layout = layout_of(project.spec)
    blobs = {t.address: valid_update(layout, seed=i) for i, t in enumerate(trainers)}
    salts = {t.address: secrets.token_bytes(32) for t in trainers}
    for t in trainers:
        digest = digest_of_cid(cid_of(blobs[t.address]))
        c = market.compute_commitment(digest, t.address, salts[t.address])
        market.commit_update(t, project.project_id, number, c, [])
    chain_round = market.get_round(project.project_id, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    for t in trainers:
        store.put(blobs[t.address])
        digest = digest_of_cid(cid_of(blobs[t.address]))
        market.reveal_update(t, project.project_id, number, digest, salts[t.address])
    env.advance(chain_round.reveal_deadline - env.now() + 1)


def _paid_once(env, market, store, db, project, number, trainers) -> None:
    """Every trainer claims (twice: the second is a no-op); escrow balanced."""
    for t in trainers:
        client = TrainerClient(market, store, t, db)
        before = env.w3.eth.get_balance(t.address)
        first = client.claim(project.project_id, number)
        assert first.amount_wei > 0 and first.tx is not None
        assert client.claim(project.project_id, number).tx is None
        assert env.w3.eth.get_balance(t.address) < before + first.amount_wei + 1
    chain_round = market.get_round(project.project_id, number)
    assert chain_round.claimed == chain_round.total
    env.assert_escrow_balanced()


@pytest.fixture
def ipfs_daemon(tmp_path):
    try:
        install_node()
    except ConfigError as exc:
        if os.environ.get("CI") or os.environ.get("MARKET_REQUIRE_IPFS") == "1":
            pytest.fail(f"REAL IPFS NODE UNAVAILABLE: {exc}", pytrace=False)
        pytest.skip(f"REAL IPFS NODE UNAVAILABLE: {exc}")
    with IpfsDaemon(tmp_path / "ipfs") as daemon:
        yield daemon


def test_store_down_at_finalize_is_a_clear_error_and_a_retry_pays_everyone(
    market_env, ipfs_daemon, tmp_path
):
    env, m = market_env, market_env.market
    store = IpfsNodeStore(ipfs_daemon.api_url)
    db = Database.at(tmp_path)
    project = _project(env, store)
    agg = Aggregator(m, store, env.aggregator, db)
    number, _ = agg.open_round(project.project_id)
    trainers = env.trainers[:2]
    _submit(env, m, store, project, number, trainers)

    ipfs_daemon.stop()
    with pytest.raises(StorageError):
        agg.finalize_round(project.project_id, number)
    chain_round = m.get_round(project.project_id, number)
    assert chain_round.state == RoundState.OPEN and chain_round.claimed == 0  # nothing sent

    store.close()
    store = IpfsNodeStore(ipfs_daemon.start())  # same repo and API port
    agg = Aggregator(m, store, env.aggregator, db)  # a restarted aggregator, same database
    outcome = agg.finalize_round(project.project_id, number)
    assert [s.status for s in outcome.report.submissions] == ["accepted", "accepted"]
    assert agg.finalize_round(project.project_id, number).finalize_tx is None  # no 2nd tx
    _paid_once(env, m, store, db, project, number, trainers)
    store.close()


def test_chain_rpc_down_is_a_clear_error_and_a_retry_resumes(market_env, tmp_path):
    env = market_env
    switch = TcpSwitch(int(env.node.rpc_url.rsplit(":", 1)[1]))
    m = LearningMarket(connect(switch.url), env.market.address, env.market.abi)
    store = EmbeddedStore(tmp_path / "store")
    db = Database.at(tmp_path)
    project = _project(env, store)
    agg = Aggregator(m, store, env.aggregator, db)
    number, _ = agg.open_round(project.project_id)
    trainers = env.trainers[:2]
    _submit(env, m, store, project, number, trainers)

    switch.down()
    with pytest.raises(ChainError):
        agg.finalize_round(project.project_id, number)
    assert env.market.get_round(project.project_id, number).state == RoundState.OPEN
    switch.up()
    outcome = agg.finalize_round(project.project_id, number)
    assert outcome.finalize_tx is not None
    assert env.market.get_round(project.project_id, number).state == RoundState.FINALIZED

    # a trainer's claim while the RPC is down fails clearly; the retry pays exactly once
    client = TrainerClient(m, store, trainers[0], db)
    switch.down()
    with pytest.raises(MarketError):
        client.claim(project.project_id, number)
    switch.up()
    _paid_once(env, m, store, db, project, number, trainers)
    switch.down()


def test_store_lost_mid_fetch_aborts_the_round_instead_of_robbing_a_trainer(
    market_env, ipfs_daemon, tmp_path
):
    """Regression: a node that failed (connection dropped, every retry) on one honest update
    made the aggregator record it as 'unavailable' and finalize without paying its trainer.
    Now the node's failure aborts the round (NodeUnavailableError, nothing sent) and the
    retry on a healthy node pays everyone."""
    env, m = market_env, market_env.market
    direct = IpfsNodeStore(ipfs_daemon.api_url)
    db = Database.at(tmp_path)
    project = _project(env, direct)
    agg = Aggregator(m, direct, env.aggregator, db)
    number, _ = agg.open_round(project.project_id)
    trainers = env.trainers[:2]
    _submit(env, m, direct, project, number, trainers)

    victim = m.revealed_digest(project.project_id, number, trainers[1].address)
    trip = tuple(normalize_cid(c).encode() for c in cid_candidates(victim))
    switch = TcpSwitch(int(ipfs_daemon.api_url.rsplit(":", 1)[1]), trip_on=trip)
    flaky = IpfsNodeStore(switch.url)
    with pytest.raises(NodeUnavailableError):
        Aggregator(m, flaky, env.aggregator, db).finalize_round(project.project_id, number)
    assert m.get_round(project.project_id, number).state == RoundState.OPEN  # nothing sent
    flaky.close()

    outcome = Aggregator(m, direct, env.aggregator, db).finalize_round(project.project_id, number)
    assert [s.status for s in outcome.report.submissions] == ["accepted", "accepted"]
    _paid_once(env, m, direct, db, project, number, trainers)
    direct.close()
