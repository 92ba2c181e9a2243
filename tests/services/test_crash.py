"""SIGKILL either service at each stage, restart it, and check nothing is sent twice or lost.

The crashing stage runs in a fresh ``market … run`` process that kills itself
(``MARKET_TEST_CRASH_AT``); the same stage then runs again in a restarted service, and the
round is driven to the end. Afterwards every account has sent exactly the transactions the
round needs (no duplicate commit, reveal, open, finalize or claim, not even a reverted one),
every update is in the round, every reward is claimed and the escrow balances.
"""

from __future__ import annotations

import pytest
from service_helpers import World, run_cli
from sqlalchemy import select
from test_services import TRAINERS, advance_past, run

from market.aggregator.runner import AggregatorRunner
from market.chain import RoundState
from market.db import Database, Intent
from market.trainer.service import TrainerService

pytestmark = pytest.mark.slow

# crash point → the stage that hits it
CRASHES = {
    "aggregator.open.sent": "open",
    "trainer.prepared": "commit",
    "trainer.commit.sent": "commit",
    "trainer.uploaded": "reveal",
    "trainer.reveal.sent": "reveal",
    "aggregator.aggregating": "finalize",
    "aggregator.finalize.sent": "finalize",
    "aggregator.finalized": "finalize",
    "trainer.claim.sent": "claim",
}


def _stage(world: World, stage: str, crash_at: str | None) -> None:
    role = "aggregator" if stage in ("open", "finalize") else "trainer"
    if crash_at is not None and CRASHES[crash_at] == stage:
        name, account = (
            ("aggregator", 1) if role == "aggregator" else (f"t{TRAINERS[0]}", TRAINERS[0])
        )
        path = world.tmp / f"{name}.toml"
        assert run_cli([role, "run", "--config", str(path), "--until-idle"], crash_at) == -9
        if crash_at.endswith(".sent"):
            _assert_hash_recorded(world, name)
    if role == "aggregator":
        run(AggregatorRunner, world.aggregator_config())
    else:
        for i in TRAINERS:
            run(TrainerService, world.trainer_config(f"t{i}", i))


def _assert_hash_recorded(world: World, name: str) -> None:
    """Killed between send and receipt: the intent already names the transaction."""
    db = Database(world.db_url(name))
    with db.session() as s:
        intent = s.scalar(select(Intent).where(Intent.status == "sending"))
    db.dispose()
    assert intent is not None and intent.tx_hash is not None
    assert world.env.w3.eth.get_transaction(intent.tx_hash)["nonce"] == intent.nonce


@pytest.mark.parametrize("crash_at", list(CRASHES))
def test_killed_service_restarts_without_double_send_or_loss(world, crash_at):
    env, pid = world.env, world.project_id
    accounts = {i: env.accounts[i].address for i in (1, *TRAINERS)}
    nonces = {i: env.w3.eth.get_transaction_count(a) for i, a in accounts.items()}
    world.aggregator_config()  # write the config files the crashing process reads
    for i in TRAINERS:
        world.trainer_config(f"t{i}", i)

    _stage(world, "open", crash_at)
    _stage(world, "commit", crash_at)
    advance_past(world, "commit")
    _stage(world, "reveal", crash_at)
    advance_past(world, "reveal")
    _stage(world, "finalize", crash_at)
    _stage(world, "claim", crash_at)

    r = env.market.get_round(pid, 1)
    assert env.market.get_project(pid).rounds_opened == 1
    assert r.state == RoundState.FINALIZED
    assert r.commits == r.reveals == len(TRAINERS)  # no lost update
    assert all(env.market.is_claimed(pid, 1, accounts[i]) for i in TRAINERS)  # no lost reward
    assert r.claimed == r.total > 0
    finalized = env.market.events("RoundFinalized", project_id=pid)
    assert len(finalized) == 1
    sent = {i: env.w3.eth.get_transaction_count(a) - nonces[i] for i, a in accounts.items()}
    assert sent == {1: 2, **{i: 3 for i in TRAINERS}}  # no double submission of any kind
    env.assert_escrow_balanced()
