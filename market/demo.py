"""``market demo``: one whole marketplace on a local anvil chain with the embedded store.

An owner escrows a budget, trainers train a small torch model on non-IID splits of the
digits, commit, reveal, the aggregator finalizes each round on chain, every trainer claims,
and the owner reclaims what was not allocated. The dev chain's clock is fast-forwarded
across the commit and reveal windows (``evm_increaseTime``) instead of waiting them out.
The summary checks that the escrow balances to the wei.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from market.aggregator.service import Aggregator, layout_of
from market.chain import (
    AnvilNode,
    ContractRevert,
    TxResult,
    chain_time,
    connect,
    deploy_market,
    dev_accounts,
    increase_time,
)
from market.db import Database
from market.errors import ConfigError
from market.owner import Windows, create_project, require_proofs
from market.storage import decode_model, open_store
from market.storage.resolve import get_by_digest
from market.trainer.client import TrainerClient
from market.trainer.data import dirichlet_split, load_digits, train_test_split
from market.trainer.local import evaluate
from market.trainer.model import ModelSpec, build_model, set_weights

FIRST_TRAINER_ACCOUNT = 3  # dev accounts 0–2: deployer, owner, aggregator


@dataclass(frozen=True)
class DemoConfig:
    rounds: int = 3
    trainers: int = 5
    alpha: float = 0.5
    reward_per_round_wei: int = 10**18
    seed: int = 0
    store: str = "embedded"
    data_dir: Path | None = None
    proof: bool = False  # finalize every round with a Groth16 proof of the reward split

    def __post_init__(self) -> None:
        if not 1 <= self.trainers <= 10 - FIRST_TRAINER_ACCOUNT:
            raise ConfigError(f"the demo runs 1 to {10 - FIRST_TRAINER_ACCOUNT} trainers")
        if self.rounds < 1:
            raise ConfigError("the demo needs at least one round")


class DemoObserver(Protocol):
    def step(self, description: str) -> None: ...
    def round_finished(self, row: dict[str, Any]) -> None: ...


class _Silent:
    def step(self, description: str) -> None:
        pass

    def round_finished(self, row: dict[str, Any]) -> None:
        pass


def total_steps(config: DemoConfig) -> int:
    """How many ``step`` calls a demo makes, for a progress bar."""
    return 3 + config.rounds * (3 * config.trainers + 4) + 1


def run_demo(config: DemoConfig, observer: DemoObserver | None = None) -> dict[str, Any]:
    observer = observer or _Silent()
    with tempfile.TemporaryDirectory(prefix="market-demo-") as scratch:
        data_dir = config.data_dir or Path(scratch)
        with AnvilNode.start() as node:
            return _run(config, observer, node.rpc_url, data_dir)


def _run(config: DemoConfig, observer: DemoObserver, rpc_url: str, data_dir: Path) -> dict:
    started = time.monotonic()
    gas: dict[str, list[int]] = defaultdict(list)

    def spent(name: str, tx: TxResult | None) -> TxResult | None:
        if tx is not None:
            gas[name].append(tx.gas_used)
        return tx

    observer.step("compiling and deploying contracts")
    w3 = connect(rpc_url)
    accounts = dev_accounts(w3)
    market = deploy_market(w3, accounts[0])
    owner, aggregator_account = accounts[1], accounts[2]
    trainer_accounts = accounts[FIRST_TRAINER_ACCOUNT : FIRST_TRAINER_ACCOUNT + config.trainers]
    store = open_store(config.store, data_dir)
    db = Database.at(data_dir)

    observer.step("splitting digits among trainers (Dirichlet non-IID)")
    train, test = train_test_split(load_digits(), test_fraction=0.2, seed=config.seed)
    parts = dirichlet_split(train.y, config.trainers, config.alpha, seed=config.seed)
    trainers = [TrainerClient(market, store, a, db) for a in trainer_accounts]
    aggregator = Aggregator(market, store, aggregator_account, db)

    observer.step("owner escrows the budget and publishes the spec")
    windows = Windows()
    model_spec = ModelSpec(input_dim=64, hidden=(64, 64), num_classes=10)
    created = create_project(
        market,
        store,
        owner,
        aggregator=aggregator_account.address,
        rounds=config.rounds,
        reward_per_round_wei=config.reward_per_round_wei,
        windows=windows,
        name="digits demo",
        model=model_spec,
        seed=config.seed,
    )
    spent("createProject", created.tx)
    project_id = created.project_id
    if config.proof:
        _, tx = require_proofs(market, owner, project_id)
        spent("setProofVerifier", tx)
    budget = config.rounds * config.reward_per_round_wei
    model = build_model(model_spec)
    layout = layout_of(created.spec)

    def accuracy_of(digest: bytes) -> float:
        _, data = get_by_digest(store, digest)
        set_weights(model, decode_model(data, layout))
        return evaluate(model, test)

    claimed: dict[str, int] = defaultdict(int)
    rounds: list[dict[str, Any]] = []
    initial_accuracy = accuracy_of(aggregator.current_model(project_id))
    for _ in range(config.rounds):
        number, tx = aggregator.open_round(project_id)
        spent("openRound", tx)
        observer.step(f"round {number}: opened")
        for i, trainer in enumerate(trainers):
            observer.step(f"round {number}: trainer {i + 1} trains and commits")
            seed = config.seed * 1000 + number * 10 + i
            trainer.prepare(project_id, number, train.subset(parts[i]), seed=seed)
            spent("commitUpdate", trainer.commit(project_id, number))
        chain_round = market.get_round(project_id, number)
        increase_time(w3, chain_round.commit_deadline - chain_time(w3) + 1)
        observer.step(f"round {number}: commit window closed (dev chain fast-forward)")
        for i, trainer in enumerate(trainers):
            observer.step(f"round {number}: trainer {i + 1} publishes and reveals")
            spent("revealUpdate", trainer.reveal(project_id, number))
        increase_time(w3, chain_round.reveal_deadline - chain_time(w3) + 1)
        observer.step(f"round {number}: aggregating and finalizing")
        outcome = aggregator.finalize_round(project_id, number)
        spent("finalizeRoundWithProof" if config.proof else "finalizeRound", outcome.finalize_tx)
        for i, trainer in enumerate(trainers):
            observer.step(f"round {number}: trainer {i + 1} claims")
            result = trainer.claim(project_id, number)
            spent("claim", result.tx)
            claimed[trainer.address] += result.amount_wei
        row = {
            "round": number,
            "model_cid": outcome.model_cid,
            "report_cid": outcome.report_cid,
            "accuracy": accuracy_of(market.get_round(project_id, number).new_model),
            "rewards_root": outcome.report.rewards_root,
            "total_wei": outcome.report.total_wei,
            "finalize_gas": outcome.finalize_tx.gas_used if outcome.finalize_tx else None,
            "accepted": sum(s.status == "accepted" for s in outcome.report.submissions),
            "rewards_wei": {s.trainer: s.reward_wei for s in outcome.report.submissions},
        }
        rounds.append(row)
        observer.round_finished(row)

    observer.step("owner reclaims the unallocated remainder")
    refunded = 0
    try:
        tx = market.refund(owner, project_id)
        spent("refund", tx)
        refunded = sum(e["args"]["amount"] for e in tx.events if e["event"] == "Refunded")
    except ContractRevert as exc:
        if exc.error_name != "NothingToRefund":
            raise
    escrowed = w3.eth.get_balance(market.address)
    total_claimed = sum(claimed.values())
    return {
        "chain_id": w3.eth.chain_id,
        "contract": market.address,
        "project_id": project_id,
        "spec_cid": created.spec_cid,
        "proof": config.proof,
        "initial_accuracy": initial_accuracy,
        "rounds": rounds,
        "trainers": [{"address": t.address, "claimed_wei": claimed[t.address]} for t in trainers],
        "budget_wei": budget,
        "claimed_wei": total_claimed,
        "refunded_wei": refunded,
        "escrowed_wei": escrowed,
        "balanced": budget == total_claimed + refunded + escrowed,
        "gas": {
            name: {"calls": len(v), "mean": round(statistics.fmean(v)), "max": max(v)}
            for name, v in sorted(gas.items())
        },
        "wall_time_s": round(time.monotonic() - started, 2),
    }
