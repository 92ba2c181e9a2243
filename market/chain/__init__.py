"""The chain layer: a local anvil, compiled contracts, accounts and the market wrapper."""

from market.chain.anvil import AnvilNode, find_anvil
from market.chain.client import (
    DEV_CHAIN_ID,
    chain_time,
    connect,
    dev_accounts,
    increase_time,
    load_account,
    mine,
    reset_nonces,
    revert,
    send_transaction,
    set_next_block_timestamp,
    snapshot,
)
from market.chain.compile import Artifact, compile_contracts
from market.chain.errors import ContractRevert
from market.chain.indexer import EventIndexer
from market.chain.market import LearningMarket, deploy_contract, deploy_market
from market.chain.types import (
    ZERO32,
    Project,
    Round,
    RoundState,
    Submission,
    TxResult,
    compute_commitment,
)

__all__ = [
    "ZERO32",
    "DEV_CHAIN_ID",
    "AnvilNode",
    "Artifact",
    "ContractRevert",
    "EventIndexer",
    "LearningMarket",
    "Project",
    "Round",
    "RoundState",
    "Submission",
    "TxResult",
    "chain_time",
    "compile_contracts",
    "compute_commitment",
    "connect",
    "deploy_contract",
    "deploy_market",
    "dev_accounts",
    "find_anvil",
    "increase_time",
    "load_account",
    "mine",
    "reset_nonces",
    "revert",
    "send_transaction",
    "set_next_block_timestamp",
    "snapshot",
]
