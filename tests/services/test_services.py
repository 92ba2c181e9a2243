"""Both services end to end on a real anvil and store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from service_helpers import REWARD, WINDOWS, World, backends, new_world
from sqlalchemy import select

from market.aggregator.runner import AggregatorRunner
from market.chain import RoundState
from market.db import Database, ProjectChoice, Submission
from market.owner import create_project
from market.runtime import ServiceLog
from market.storage import EmbeddedStore
from market.trainer.model import ModelSpec
from market.trainer.service import TrainerService

pytestmark = pytest.mark.slow

TRAINERS = (2, 3)


def run(service_cls, config) -> tuple[int, list[dict]]:
    log = ServiceLog(json_logs=False)
    service = service_cls(config, log)
    try:
        return service.run(until_idle=True, max_passes=20), log.records
    finally:
        service.close()


def advance_past(world: World, which: str) -> None:
    """Move the clock past this deadline of every project's first round: rounds of several
    projects open a few seconds apart, and the last one opened closes last."""
    market = world.env.market
    deadlines = [
        getattr(market.get_round(pid, 1), f"{which}_deadline")
        for pid in range(1, market.project_count() + 1)
        if market.get_project(pid).rounds_opened >= 1
    ]
    world.env.advance(max(deadlines) - world.env.now() + 1)


def drive_round(world: World, trainer_extra: dict | None = None) -> dict[str, list[dict]]:
    """open → commit → reveal → finalize → claim, each service restarted at every stage."""
    logs: dict[str, list[dict]] = {"aggregator": [], "trainer": []}
    agg = world.aggregator_config()
    trainers = [world.trainer_config(f"t{i}", i, **(trainer_extra or {})) for i in TRAINERS]

    def trainers_pass():
        for config in trainers:
            logs["trainer"] += run(TrainerService, config)[1]

    logs["aggregator"] += run(AggregatorRunner, agg)[1]
    trainers_pass()
    advance_past(world, "commit")
    trainers_pass()
    advance_past(world, "reveal")
    logs["aggregator"] += run(AggregatorRunner, agg)[1]
    trainers_pass()
    return logs


@pytest.mark.parametrize("backend", backends(), indirect=True)
def test_round_runs_through_both_services(world):
    env, pid = world.env, world.project_id
    nonces = {i: env.w3.eth.get_transaction_count(env.accounts[i].address) for i in (1, *TRAINERS)}
    logs = drive_round(world)

    r = env.market.get_round(pid, 1)
    assert r.state == RoundState.FINALIZED and r.reveals == len(TRAINERS)
    for i in TRAINERS:
        assert env.market.is_claimed(pid, 1, env.accounts[i].address)
    assert r.claimed == r.total > 0 and r.total <= REWARD
    # exactly the transactions needed: open + finalize; commit + reveal + claim per trainer
    sent = {
        i: env.w3.eth.get_transaction_count(env.accounts[i].address) - n for i, n in nonces.items()
    }
    assert sent == {1: 2, 2: 3, 3: 3}
    env.assert_escrow_balanced()
    events = [rec["event"] for rec in logs["aggregator"]]
    assert events.count("opened") == 1 and events.count("finalized") == 1
    assert any(rec["event"] == "update" and rec["ok"] for rec in logs["aggregator"])
    db = Database(world.db_url("t2"))
    with db.session() as s:
        statuses = list(s.scalars(select(Submission.status)))
    db.dispose()
    assert statuses == ["claimed"]


def test_trainer_filters_projects_by_spec_and_reward(world):
    high_bar = {"min_reward": "5"}  # the project pays 1 ETH per round
    config = world.trainer_config("picky", 4, **high_bar)
    actions, _ = run(TrainerService, config)
    assert actions == 0
    db = Database(config.database_url())
    with db.session() as s:
        choice = s.scalar(select(ProjectChoice))
    db.dispose()
    assert choice.project_id == world.project_id and not choice.accepted
    assert "below minimum" in choice.reason

    other_schema = world.trainer_config("schema", 5, data_schemas=["cifar-10"])
    run(AggregatorRunner, world.aggregator_config())  # opens round 1
    actions, records = run(TrainerService, other_schema)
    assert actions == 0
    assert [r["joined"] for r in records if r["event"] == "project"] == [False]
    assert world.env.market.get_round(world.project_id, 1).commits == 0


def test_trainer_expires_an_abandoned_round_and_claims_its_share(world):
    env, pid = world.env, world.project_id
    run(AggregatorRunner, world.aggregator_config())
    config = world.trainer_config("t2", 2)
    run(TrainerService, config)
    advance_past(world, "commit")
    run(TrainerService, config)
    advance_past(world, "finalize")  # the aggregator never came back
    before = env.w3.eth.get_balance(env.accounts[2].address)
    _, records = run(TrainerService, config)
    assert env.market.get_round(pid, 1).state == RoundState.EXPIRED
    assert env.market.is_claimed(pid, 1, env.accounts[2].address)
    assert any(r["event"] == "claimed_expired" for r in records)
    assert env.w3.eth.get_balance(env.accounts[2].address) > before
    env.assert_escrow_balanced()


@pytest.mark.parametrize("backend", backends(), indirect=True)
def test_one_aggregator_and_trainer_serve_many_projects(world):
    env = world.env
    store = EmbeddedStore(world.store_path)
    common = dict(
        rounds=1,
        reward_per_round_wei=REWARD,
        windows=WINDOWS,
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 64},
    )
    second = create_project(
        env.market, store, env.owner, aggregator=env.aggregator.address, name="b", **common
    ).project_id
    foreign = create_project(
        env.market, store, env.owner, aggregator=env.outsider.address, name="c", **common
    ).project_id
    logs = drive_round(world)
    for pid in (world.project_id, second):
        r = env.market.get_round(pid, 1)
        assert r.state == RoundState.FINALIZED and r.reveals == len(TRAINERS)
        assert all(env.market.is_claimed(pid, 1, env.accounts[i].address) for i in TRAINERS)
    assert env.market.get_project(foreign).rounds_opened == 0  # not this aggregator's
    finalized = sorted(r["project"] for r in logs["aggregator"] if r["event"] == "finalized")
    assert finalized == [world.project_id, second]
    env.assert_escrow_balanced()


def test_service_rides_out_a_node_outage(world):
    class Flaky(AggregatorRunner):
        calls = 0

        def step(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("connection refused")  # the node restarting
            return super().step()

    log = ServiceLog()
    service = Flaky(world.aggregator_config(), log)
    try:
        assert service.run(until_idle=True, max_passes=5) == 1  # opened round 1 after all
    finally:
        service.close()
    assert any("retrying" in r.get("message", "") for r in log.records)
    assert world.env.market.get_project(world.project_id).rounds_opened == 1


def test_services_carry_a_project_through_consecutive_rounds(world):
    env = world.env
    pid = create_project(
        env.market,
        EmbeddedStore(world.store_path),
        env.owner,
        aggregator=env.aggregator.address,
        rounds=2,
        reward_per_round_wei=REWARD,
        windows=WINDOWS,
        name="two rounds",
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 64},
    ).project_id
    agg = world.aggregator_config(projects=[pid])
    trainers = [world.trainer_config(f"t{i}", i, projects=[pid]) for i in TRAINERS]

    def trainers_pass():
        for config in trainers:
            run(TrainerService, config)

    def past(number: int, which: str) -> None:
        deadline = getattr(env.market.get_round(pid, number), f"{which}_deadline")
        env.advance(deadline - env.now() + 1)

    run(AggregatorRunner, agg)
    for number in (1, 2):
        trainers_pass()  # (claims the previous round and) trains + commits this one
        past(number, "commit")
        trainers_pass()
        past(number, "reveal")
        run(AggregatorRunner, agg)  # finalizes, then opens the next round
    trainers_pass()
    first, second = env.market.get_round(pid, 1), env.market.get_round(pid, 2)
    assert second.global_model == first.new_model  # round 2 trained from round 1's model
    for r in (first, second):
        assert r.state == RoundState.FINALIZED and r.reveals == len(TRAINERS)
        assert r.claimed == r.total > 0
    env.assert_escrow_balanced()


def test_services_gate_a_meritrank_round(market_env, tmp_path):
    """A project with an admission policy: the aggregator service opens the round with the
    admitted list's root (published to the store first) instead of open admission, and a
    trainer service that cannot show itself admitted does not waste a training run.

    Here the trainers have their own databases and no ``aggregator_api``: they cannot find
    the list, so they do not train (test_aggregator_api.py gives them the API).
    """
    from market.reputation import AdmissionPolicy, record_application, sign_application
    from market.reputation.rounds import load_admission

    env = market_env
    admission = AdmissionPolicy(top_k=0, newcomer_quota=1).to_dict()
    world = new_world(env, tmp_path, "sqlite", "gated", admission=admission)
    project_id, store_path = world.project_id, world.store_path
    agg_db = Database(world.db_url("aggregator"))
    for index in TRAINERS:  # signed applications, delivered to the aggregator's database
        app = sign_application(
            env.accounts[index], project_id, 1, env.w3.eth.chain_id, env.market.address
        )
        record_application(agg_db, app)
    run(AggregatorRunner, world.aggregator_config())
    chain_round = env.market.get_round(project_id, 1)
    assert chain_round.admission_root != b"\0" * 32
    admission, _ = load_admission(EmbeddedStore(store_path), env.market, project_id, 1, db=agg_db)
    assert len(admission.admitted) == 1  # the newcomer quota
    logs = []
    for i in TRAINERS:
        logs += run(TrainerService, world.trainer_config(f"t{i}", i))[1]
    assert env.market.get_round(project_id, 1).commits == 0
    assert len([r for r in logs if r.get("event") == "not_admitted"]) == len(TRAINERS)
