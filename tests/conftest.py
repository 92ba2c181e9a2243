"""Session fixtures shared by every test: one anvil, compiled contracts, one deployed market.

``market_env`` gives each test the deployed market at a clean state: it snapshots the
chain before the test and reverts after, so tests never see each other's projects (much
faster than redeploying). Gas used per contract function is collected and printed at the
end of the session.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from market.chain import (
    AnvilNode,
    Artifact,
    LearningMarket,
    chain_time,
    compile_contracts,
    connect,
    deploy_market,
    dev_accounts,
    increase_time,
    revert,
    snapshot,
)

GAS_USED: dict[str, list[int]] = defaultdict(list)
_STARTED_ANVIL_PIDS: list[int] = []


@dataclass
class MarketEnv:
    """A deployed market and named dev accounts, reverted after each test."""

    w3: Web3
    market: LearningMarket
    node: AnvilNode
    artifacts: dict[str, Artifact]
    accounts: list[LocalAccount]
    owner: LocalAccount
    aggregator: LocalAccount
    trainers: list[LocalAccount] = field(default_factory=list)
    outsider: LocalAccount | None = None

    def now(self) -> int:
        return chain_time(self.w3)

    def advance(self, seconds: int) -> int:
        """Move the chain clock forward ``seconds`` and mine; returns the new time."""
        return increase_time(self.w3, seconds)

    def create_project(
        self,
        rounds: int = 2,
        reward_per_round: int = 10**18,
        windows: tuple[int, int, int] = (100, 100, 100),
        spec_digest: bytes = b"\x5a" * 32,
    ) -> int:
        project_id, _ = self.market.create_project(
            self.owner, spec_digest, self.aggregator.address, rounds, reward_per_round, *windows
        )
        return project_id

    def assert_escrow_balanced(self) -> None:
        """The contract holds exactly what it still owes (see LearningMarket.outstanding)."""
        assert self.market.balance() == self.market.outstanding()


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """One anvil for the whole session, stopped (and checked gone) at the end."""
    node = AnvilNode.start()
    _STARTED_ANVIL_PIDS.append(node.pid)
    try:
        yield node
    finally:
        node.stop()
        assert not node.is_running(), "anvil is still running after stop()"


@pytest.fixture(scope="session")
def w3(anvil: AnvilNode) -> Web3:
    return connect(anvil.rpc_url)


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return compile_contracts()


@pytest.fixture(scope="session")
def accounts(w3: Web3) -> list[LocalAccount]:
    """Anvil's ten funded dev accounts: 0 owner, 1 aggregator, 2..8 trainers, 9 outsider."""
    return dev_accounts(w3)


@pytest.fixture(scope="session")
def deployed_market(w3: Web3, accounts: list[LocalAccount], artifacts) -> LearningMarket:
    market = deploy_market(w3, accounts[0])
    market.on_tx = lambda function, result: GAS_USED[function].append(result.gas_used)
    return market


@pytest.fixture
def market_env(
    w3: Web3,
    anvil: AnvilNode,
    deployed_market: LearningMarket,
    accounts: list[LocalAccount],
    artifacts: dict[str, Artifact],
) -> Iterator[MarketEnv]:
    snap = snapshot(w3)
    try:
        yield MarketEnv(
            w3=w3,
            market=deployed_market,
            node=anvil,
            artifacts=artifacts,
            accounts=accounts,
            owner=accounts[0],
            aggregator=accounts[1],
            trainers=accounts[2:9],
            outsider=accounts[9],
        )
    finally:
        revert(w3, snap)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if GAS_USED:
        terminalreporter.write_sep("-", "LearningMarket gas used per function (min / mean / max)")
        for function in sorted(GAS_USED):
            used = GAS_USED[function]
            terminalreporter.write_line(
                f"{function:<16} n={len(used):<4} {min(used):>8} {sum(used) // len(used):>8} "
                f"{max(used):>8}"
            )
    leftover = [pid for pid in _STARTED_ANVIL_PIDS if os.path.exists(f"/proc/{pid}")]
    if leftover:
        terminalreporter.write_line(f"WARNING: anvil processes left running: {leftover}")
