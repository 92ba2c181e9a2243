"""A whole local stack for the dashboard: anvil, a deployed market, the embedded store, and
the server on a free loopback port — for ``market serve --dev-chain``, the browser tests
and the README screenshots. Also a simulated round (real trainers and aggregator code on
digits splits) so the page has something to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.chain import (
    AnvilNode,
    LearningMarket,
    chain_time,
    connect,
    deploy_market,
    dev_accounts,
    increase_time,
)
from market.errors import ConfigError
from market.serving import ServerThread

from .app import create_app
from .settings import Settings


@dataclass
class DevStack:
    """anvil + deployed LearningMarket + embedded store under ``data_dir`` (+ a server)."""

    data_dir: Path
    node: AnvilNode
    market: LearningMarket
    server: ServerThread | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, data_dir: Path, *, serve: bool = True, port: int | None = None) -> DevStack:
        node = AnvilNode.start()
        try:
            w3 = connect(node.rpc_url)
            market = deploy_market(w3, dev_accounts(w3)[0])
            path = data_dir / "deployments" / f"{w3.eth.chain_id}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"LearningMarket": market.address}))
            stack = cls(data_dir, node, market)
            if serve:
                stack.server = ServerThread(
                    create_app(stack.settings()), port=port, name="dashboard server"
                ).start()
            return stack
        except BaseException:
            node.stop()
            raise

    def settings(self, **overrides: Any) -> Settings:
        return Settings(
            rpc_url=self.node.rpc_url,
            contract=self.market.address,
            data_dir=self.data_dir,
            poll_seconds=0.3,
            **overrides,
        )

    @property
    def url(self) -> str:
        if self.server is None:
            raise ConfigError("this dev stack was started without a server")
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.node.stop()

    def __enter__(self) -> DevStack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def simulate_round(
    market: LearningMarket,
    data_dir: Path,
    project_id: int,
    *,
    trainers: int = 4,
    claims: int | None = None,
    seed: int = 0,
    first_trainer: int = 3,
    sybils: int = 0,
) -> dict[str, Any]:
    """Open, train, commit, reveal, finalize and claim one round on the dev chain.

    Trainers are dev accounts ``first_trainer…`` with Dirichlet splits of the digits; the
    chain clock is fast-forwarded across the windows. ``claims`` trainers claim (all by
    default), so the page can show claimed and unclaimed rewards side by side. The last
    ``sybils`` trainers are one operator's clones: same data, same seed, identical updates.
    """
    from market.aggregator.service import Aggregator
    from market.db import Database
    from market.storage import open_store
    from market.trainer.client import TrainerClient
    from market.trainer.data import dirichlet_split, load_digits, train_test_split

    w3 = market.w3
    accounts = dev_accounts(w3)
    store = open_store("embedded", data_dir)
    db = Database.at(data_dir)
    project = market.get_project(project_id)
    aggregator_account = next(a for a in accounts if a.address == project.aggregator)
    aggregator = Aggregator(market, store, aggregator_account, db)
    train, _ = train_test_split(load_digits(), test_fraction=0.2, seed=0)
    honest = trainers - sybils
    if honest < 1 or sybils < 0:
        raise ConfigError(f"need an honest trainer; got {trainers} trainers, {sybils} Sybils")
    parts = dirichlet_split(train.y, honest + (1 if sybils else 0), 0.5, seed=seed)
    clients = [
        TrainerClient(market, store, a, db)
        for a in accounts[first_trainer : first_trainer + trainers]
    ]
    number, _ = aggregator.open_round(project_id)
    for i, client in enumerate(clients):
        k = min(i, honest)  # every Sybil clone trains exactly like the first one
        client.prepare(
            project_id, number, train.subset(parts[k]), seed=seed * 100 + number * 10 + k
        )
        client.commit(project_id, number)
    chain_round = market.get_round(project_id, number)
    increase_time(w3, chain_round.commit_deadline - chain_time(w3) + 1)
    for client in clients:
        client.reveal(project_id, number)
    increase_time(w3, chain_round.reveal_deadline - chain_time(w3) + 1)
    outcome = aggregator.finalize_round(project_id, number)
    claimed = []
    for client in clients[: len(clients) if claims is None else claims]:
        if client.claim(project_id, number).amount_wei:
            claimed.append(client.address)
    return {
        "round": number,
        "model_cid": outcome.model_cid,
        "report_cid": outcome.report_cid,
        "trainers": [c.address for c in clients],
        "claimed": claimed,
    }
