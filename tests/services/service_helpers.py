"""Helpers of the service tests: the world (one project, a shared embedded store, per-service
databases on SQLite or a throwaway PostgreSQL cluster) and running `market` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from market.config import AggregatorConfig, TrainerConfig, load_config
from market.db.pgcluster import find_pg_bin, shared_cluster
from market.owner import Windows, create_project
from market.storage import EmbeddedStore
from market.trainer.model import ModelSpec

WINDOWS = Windows(submission=100, reveal=100, finalize=1000)
REWARD = 10**18


def backends() -> list:
    pg = pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            find_pg_bin() is None, reason="no PostgreSQL server: run scripts/install-postgres.sh"
        ),
    )
    return ["sqlite", pg]


@dataclass
class World:
    env: object
    tmp: Path
    backend: str
    project_id: int
    start_block: int
    store_path: Path
    db_urls: dict[str, str] = field(default_factory=dict)

    def db_url(self, name: str) -> str:
        if name not in self.db_urls:
            if self.backend == "postgresql":
                self.db_urls[name] = shared_cluster().create_database()
            else:
                self.db_urls[name] = f"sqlite:///{self.tmp / (name + '.db')}"
        return self.db_urls[name]

    def settings(self, name: str, account: int, **extra) -> dict:
        return {
            "rpc_url": self.env.node.rpc_url,
            "contract": self.env.market.address,
            "store": f"embedded:{self.store_path}",
            "data_dir": str(self.tmp / name),
            "db_url": self.db_url(name),
            "account": account,
            "poll_interval": 0.05,
            "start_block": self.start_block,
            **extra,
        }

    def config_file(self, name: str, account: int, **extra) -> Path:
        path = self.tmp / f"{name}.toml"
        lines = [f"{k} = {_toml(v)}" for k, v in self.settings(name, account, **extra).items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def trainer_config(self, name: str, account: int, **extra) -> TrainerConfig:
        extra.setdefault("digits_parts", 3)
        extra.setdefault("digits_part", account % 3)
        extra.setdefault("digits_alpha", 100.0)  # near-IID parts: updates align, all paid
        return load_config(TrainerConfig, self.config_file(name, account, **extra))

    def aggregator_config(self, **extra) -> AggregatorConfig:
        return load_config(AggregatorConfig, self.config_file("aggregator", 1, **extra))


def new_world(
    env, tmp_path: Path, backend: str, name: str, rounds: int = 1, admission: dict | None = None
) -> World:
    """A fresh project (small MLP, WINDOWS, REWARD per round) and the World around it."""
    store_path = tmp_path / "store"
    start = env.w3.eth.block_number + 1
    created = create_project(
        env.market,
        EmbeddedStore(store_path),
        env.owner,
        aggregator=env.aggregator.address,
        rounds=rounds,
        reward_per_round_wei=REWARD,
        windows=WINDOWS,
        name=name,
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 64},
        max_update_bytes=200_000,
        admission=admission,
    )
    return World(env, tmp_path, backend, created.project_id, start, store_path)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_cli(args: list[str], crash_at: str | None = None, timeout: float = 240) -> int:
    """Run ``market …`` in a fresh process (optionally dying at a crash point)."""
    env = dict(os.environ)
    env.pop("MARKET_TEST_CRASH_AT", None)
    if crash_at:
        env["MARKET_TEST_CRASH_AT"] = crash_at
    done = subprocess.run(
        [sys.executable, "-c", "from market.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode not in (0, -9):
        raise AssertionError(f"market {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.returncode
