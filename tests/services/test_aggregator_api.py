"""The aggregator's HTTP API: trainers with their own database apply to gated rounds and find
the admitted list — on a real anvil, a real store, separate SQLite databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_helpers import World, new_world
from sqlalchemy import select
from test_services import TRAINERS, run
from typer.testing import CliRunner

from market.aggregator.api import create_api
from market.aggregator.service import Aggregator
from market.chain import RoundState
from market.cli import app as cli
from market.db import Database
from market.db.reputation import PublishedAdmission, SignedApplication
from market.errors import ConfigError, ReputationError
from market.reputation import AdmissionPolicy, sign_application
from market.reputation.commands import open_round
from market.reputation.remote import AggregatorApi, ApiRefused, ApiUnavailable, fetch_admission
from market.serving import ServerThread, free_port
from market.storage import EmbeddedStore
from market.trainer.service import TrainerService

POLICY = AdmissionPolicy(top_k=0, newcomer_quota=len(TRAINERS))  # every applicant is new


def gated_world(env, tmp_path, rounds: int = 1, policy: AdmissionPolicy = POLICY) -> World:
    admission = policy.to_dict() if policy else {"policy": "open"}
    return new_world(env, tmp_path, "sqlite", "gated", rounds, admission)


def signed(env, index: int, pid: int, number: int):
    return sign_application(
        env.accounts[index], pid, number, env.w3.eth.chain_id, env.market.address
    )


def post(client: TestClient, app) -> requests.Response:
    return client.post(
        f"/projects/{app.project_id}/rounds/{app.round}/applications", json=app.to_json()
    )


# -------------------------------------------------------------------- the API's checks


def test_api_checks_applications_and_serves_the_checked_admission(market_env, tmp_path):
    env = market_env
    world = gated_world(env, tmp_path)
    pid = world.project_id
    store = EmbeddedStore(world.store_path)
    agg_db = Database(world.db_url("aggregator"))
    client = TestClient(create_api(env.market, store, agg_db, env.aggregator.address))
    try:
        assert client.get("/health").json()["aggregator"] == env.aggregator.address

        good = signed(env, 2, pid, 1)
        first = post(client, good)
        assert first.status_code == 200, first.text
        assert first.json()["already"] is False
        again = post(client, good)  # idempotent
        assert again.status_code == 200 and again.json()["already"] is True

        forged = replace(signed(env, 5, pid, 1), trainer=env.accounts[3].address)
        refused = post(client, forged)
        assert refused.status_code == 403
        assert "forged" in refused.json()["error"] and env.accounts[3].address in refused.text

        cases = {
            "malformed": (client.post(f"/projects/{pid}/rounds/1/applications", json={}), 400),
            "not JSON": (client.post(f"/projects/{pid}/rounds/1/applications", content=b"x"), 400),
            "wrong path": (
                client.post(f"/projects/{pid}/rounds/2/applications", json=good.to_json()),
                400,
            ),
            "other market": (
                post(client, replace(good, market=env.outsider.address)),
                400,
            ),
            "not the next round": (post(client, signed(env, 3, pid, 2)), 409),
            "unknown project": (post(client, signed(env, 3, pid + 50, 1)), 404),
            "admission not open yet": (client.get(f"/projects/{pid}/rounds/1/admission"), 404),
        }
        for name, (response, status) in cases.items():
            assert response.status_code == status, (name, response.text)
            assert response.json()["error"], name

        opened, _, record = open_round(
            Aggregator(env.market, store, env.aggregator, agg_db), env.market, store, agg_db, pid
        )
        assert record["admitted"] == [env.accounts[2].address]  # the forged one never counted
        closed = post(client, signed(env, 3, pid, 1))
        assert closed.status_code == 409 and "closed" in closed.json()["error"]

        answer = client.get(f"/projects/{pid}/rounds/{opened}/admission").json()
        assert answer["cid"] == record["cid"] and answer["root"] == record["root"]
        assert answer["document"]["admission"]["admitted"] == [env.accounts[2].address]
    finally:
        agg_db.dispose()


def test_open_or_foreign_projects_take_no_application(market_env, tmp_path):
    env = market_env
    world = gated_world(env, tmp_path, policy=None)
    store = EmbeddedStore(world.store_path)
    db = Database(world.db_url("aggregator"))
    try:
        mine = TestClient(create_api(env.market, store, db, env.aggregator.address))
        response = post(mine, signed(env, 2, world.project_id, 1))
        assert response.status_code == 409 and "open admission" in response.json()["error"]
        theirs = TestClient(create_api(env.market, store, db, env.outsider.address))
        response = post(theirs, signed(env, 2, world.project_id, 1))
        assert response.status_code == 404 and "not served" in response.json()["error"]
    finally:
        db.dispose()


def test_served_api_takes_cli_applications_and_refuses_a_taken_port(market_env, tmp_path):
    env = market_env
    world = gated_world(env, tmp_path)
    pid = world.project_id
    db = Database(world.db_url("aggregator"))
    port = free_port()
    server = ServerThread(
        create_api(env.market, EmbeddedStore(world.store_path), db, env.aggregator.address),
        "127.0.0.1",
        port,
        "aggregator API",
        "api_listen",
    ).start()
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            ServerThread(FastAPI(), "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        common = ["--rpc-url", env.node.rpc_url, "--contract", env.market.address]
        common += ["--data-dir", str(tmp_path / "t3"), "--aggregator-api", url, "--json"]
        applied = CliRunner().invoke(
            cli, ["trainer", "apply", "-p", str(pid), "--account", "3", *common]
        )
        assert applied.exit_code == 0, applied.output
        assert json.loads(applied.output)["delivered_to"] == url
        early = CliRunner().invoke(
            cli, ["trainer", "apply", "-p", str(pid), "-r", "2", "--account", "3", *common]
        )
        assert isinstance(early.exception, ApiRefused) and early.exception.status == 409
    finally:
        server.stop()
    with db.session() as s:
        assert s.scalar(select(SignedApplication.trainer)) == env.accounts[3].address
    db.dispose()
    down = AggregatorApi(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ApiUnavailable, match="unreachable"):
        down.apply(signed(env, 3, pid, 1))


class LyingApi(AggregatorApi):
    """An aggregator API (or a man in the middle) handing out a doctored admitted list."""

    def __init__(self, honest: TestClient, tamper) -> None:  # noqa: ANN001
        super().__init__("http://liar")
        self.honest, self.tamper = honest, tamper

    def admission(self, project_id: int, round_: int) -> dict:
        answer = self.honest.get(f"/projects/{project_id}/rounds/{round_}/admission").json()
        return self.tamper(answer)


def test_trainer_trusts_no_admission_document_the_chain_contradicts(market_env, tmp_path):
    env = market_env
    world = gated_world(env, tmp_path)
    pid = world.project_id
    store = EmbeddedStore(world.store_path)
    agg_db, trainer_db = Database(world.db_url("aggregator")), Database(world.db_url("t3"))
    trainer_store = EmbeddedStore(tmp_path / "trainer-store")
    honest = TestClient(create_api(env.market, store, agg_db, env.aggregator.address))
    try:
        assert post(honest, signed(env, 2, pid, 1)).status_code == 200
        open_round(
            Aggregator(env.market, store, env.aggregator, agg_db), env.market, store, agg_db, pid
        )

        def add_me(answer: dict) -> dict:  # same CID, a list with trainer 3 slipped in
            answer["document"]["admission"]["admitted"].append(env.accounts[3].address)
            return answer

        def rebuild(answer: dict) -> dict:  # a consistent document with another root
            from market.reputation import admit
            from market.spec import canonical_json
            from market.storage.cid import cid_of

            fake = admit([env.accounts[3].address], {}, POLICY, b"seed")
            answer["document"]["admission"] = fake.to_json()
            answer["cid"] = cid_of(canonical_json(answer["document"]))
            return answer

        for tamper, says in ((add_me, "does not hash"), (rebuild, "was opened with")):
            with pytest.raises(ReputationError, match=says):
                fetch_admission(
                    LyingApi(honest, tamper), env.market, trainer_store, trainer_db, pid, 1
                )
        with trainer_db.session() as s:
            assert s.scalar(select(PublishedAdmission)) is None  # nothing indexed

        faithful = LyingApi(honest, lambda answer: answer)
        cid = fetch_admission(faithful, env.market, trainer_store, trainer_db, pid, 1)
        assert trainer_store.has(cid)  # kept and indexed: the trainer's commit finds it
        with trainer_db.session() as s:
            assert s.scalar(select(PublishedAdmission.cid)) == cid
    finally:
        agg_db.dispose()
        trainer_db.dispose()


# ------------------------------------------------------- both services, end to end


class AggregatorProcess:
    """`market aggregator run` in its own process, its API on a loopback port."""

    def __init__(self, config: str, url: str) -> None:
        self.config, self.url = config, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from market.cli import main; main()"]
            + ["aggregator", "run", "--config", self.config, "--json"],
            env={k: v for k, v in os.environ.items() if k != "MARKET_TEST_CRASH_AT"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(self._healthy, "the aggregator API to answer")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"aggregator exited:\n{self.proc.stdout.read()}")
        try:
            return requests.get(self.url + "/health", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> list[dict]:
        """SIGTERM, wait, and return its JSON log lines."""
        if self.proc is None:
            return []
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.proc = None
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_for(condition, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def warnings_of(records: list[dict]) -> list[str]:
    return [r["message"] for r in records if r["event"] == "warning"]


@pytest.mark.slow
def test_gated_trainers_apply_over_http_are_admitted_and_paid(market_env, tmp_path):
    """Trainer and aggregator with separate SQLite databases: the trainers apply through the
    aggregator's API (retrying while it is down), are admitted, commit, reveal and are paid;
    the API going down mid-round makes them wait, not fail."""
    env = market_env
    world = gated_world(env, tmp_path)
    pid, market = world.project_id, env.market
    url = f"http://127.0.0.1:{free_port()}"
    window = 300  # chain seconds the first round takes applications
    aggregator = AggregatorProcess(
        str(world.config_file("aggregator", 1, api_listen=url[7:], application_window=window)),
        url,
    )
    trainers = [world.trainer_config(f"t{i}", i, aggregator_api=url) for i in TRAINERS]
    records: list[dict] = []
    agg_log: list[dict] = []

    def trainers_pass() -> None:
        for config in trainers:
            records.extend(run(TrainerService, config)[1])

    try:
        trainers_pass()  # the API is not up yet: they say so, and apply later
        assert sum("unreachable" in w and "will retry" in w for w in warnings_of(records)) == len(
            TRAINERS
        )
        assert not [r for r in records if r["event"] == "applied"]

        aggregator.start()
        trainers_pass()
        applied = [r for r in records if r["event"] == "applied"]
        assert [(r["project"], r["round"], r["to"]) for r in applied] == [(pid, 1, url)] * 2
        forged = replace(signed(env, 5, pid, 1), trainer=env.accounts[4].address)
        answer = requests.post(
            f"{url}/projects/{pid}/rounds/1/applications", json=forged.to_json(), timeout=10
        )
        assert answer.status_code == 403 and "forged" in answer.json()["error"]
        assert market.get_project(pid).rounds_opened == 0  # still taking applications

        env.advance(window + 1)
        wait_for(lambda: market.get_project(pid).rounds_opened == 1, "round 1 to open")
        agg_log += aggregator.stop()  # the API goes down mid-round
        before = len(records)
        trainers_pass()
        assert market.get_round(pid, 1).commits == 0
        assert all("will retry" in w for w in warnings_of(records[before:]))
        assert len(warnings_of(records[before:])) == len(TRAINERS)

        aggregator.start()  # back: the trainers fetch the list, check it, train and commit
        trainers_pass()
        assert market.get_round(pid, 1).commits == len(TRAINERS)
        done = [r for r in records if r["event"] == "progress" and r["batch"] == r["batches"]]
        assert len(done) == len(TRAINERS)  # each training run logged its progress to the end
        env.advance(market.get_round(pid, 1).commit_deadline - env.now() + 1)
        trainers_pass()
        env.advance(market.get_round(pid, 1).reveal_deadline - env.now() + 1)
        wait_for(lambda: market.get_round(pid, 1).state == RoundState.FINALIZED, "the finalization")
        trainers_pass()
    finally:
        agg_log += aggregator.stop()

    r = market.get_round(pid, 1)
    assert r.reveals == len(TRAINERS) and r.claimed == r.total > 0
    assert all(market.is_claimed(pid, 1, env.accounts[i].address) for i in TRAINERS)
    env.assert_escrow_balanced()
    admission = next(rec for rec in agg_log if rec["event"] == "admission")
    assert admission["admitted"] == len(TRAINERS)  # the forged application was never stored
    agg_db = Database(world.db_url("aggregator"))
    with agg_db.session() as s:
        stored = sorted(s.scalars(select(SignedApplication.trainer)))
    agg_db.dispose()
    assert stored == sorted(env.accounts[i].address for i in TRAINERS)
    for i in TRAINERS:  # each trainer recorded that it applied, and where the list is
        db = Database(world.db_url(f"t{i}"))
        with db.session() as s:
            assert s.scalar(select(SignedApplication.delivered_to)) == url
            assert s.scalar(select(PublishedAdmission.cid)) == admission["cid"]
        db.dispose()
