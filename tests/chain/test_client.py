"""Accounts, dev-only helpers, nonces and revert decoding."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from market.chain import (
    AnvilNode,
    ContractRevert,
    chain_time,
    connect,
    dev_accounts,
    increase_time,
    load_account,
    revert,
    snapshot,
)
from market.chain.errors import decode_revert, error_selectors
from market.errors import ConfigError

ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_ACCOUNT_9 = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


def test_dev_accounts_are_anvils(w3):
    accounts = dev_accounts(w3)
    assert len(accounts) == 10
    assert accounts[0].address == ANVIL_ACCOUNT_0
    assert accounts[9].address == ANVIL_ACCOUNT_9
    assert w3.eth.get_balance(accounts[9].address) > 0


@pytest.fixture(scope="module")
def foreign_chain():
    with AnvilNode.start(chain_id=5) as node:
        yield connect(node.rpc_url)


def test_dev_keys_and_helpers_refused_on_other_chains(foreign_chain):
    with pytest.raises(ConfigError, match="31337"):
        dev_accounts(foreign_chain)
    with pytest.raises(ConfigError):
        load_account(foreign_chain, key_env="MARKET_TEST_UNSET_KEY", dev_index=0)
    for helper, args in ((increase_time, (10,)), (snapshot, ()), (revert, ("0x1",))):
        with pytest.raises(ConfigError):
            helper(foreign_chain, *args)


def test_load_account_from_env(w3, monkeypatch):
    key = "0x" + "11" * 32
    monkeypatch.setenv("MARKET_TEST_KEY", key)
    assert load_account(w3, key_env="MARKET_TEST_KEY").address == Account.from_key(key).address
    monkeypatch.setenv("MARKET_TEST_KEY", "not a key")
    with pytest.raises(ConfigError, match="MARKET_TEST_KEY"):
        load_account(w3, key_env="MARKET_TEST_KEY")


def test_load_account_from_keystore(w3, monkeypatch, tmp_path):
    account = Account.create()
    path = tmp_path / "key.json"
    import json

    path.write_text(json.dumps(Account.encrypt(account.key, "pw", iterations=2)))
    monkeypatch.delenv("MARKET_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="MARKET_KEYSTORE_PASSWORD"):
        load_account(w3, keystore=path)
    monkeypatch.setenv("MARKET_KEYSTORE_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="keystore"):
        load_account(w3, keystore=path)
    monkeypatch.setenv("MARKET_KEYSTORE_PASSWORD", "pw")
    assert load_account(w3, keystore=path).address == account.address


def test_load_account_dev_index_and_missing_key(w3, monkeypatch):
    monkeypatch.delenv("MARKET_TEST_UNSET_KEY", raising=False)
    assert load_account(w3, key_env="MARKET_TEST_UNSET_KEY", dev_index=9).address == (
        ANVIL_ACCOUNT_9
    )
    with pytest.raises(ConfigError, match="dev_index"):
        load_account(w3, key_env="MARKET_TEST_UNSET_KEY", dev_index=10)
    with pytest.raises(ConfigError, match="no signing key"):
        load_account(w3, key_env="MARKET_TEST_UNSET_KEY")


def test_increase_time_snapshot_and_revert(market_env):
    w3 = market_env.w3
    start = chain_time(w3)
    snap = snapshot(w3)
    assert increase_time(w3, 3600) >= start + 3600
    pid = market_env.create_project()
    assert market_env.market.project_count() == pid
    revert(w3, snap)
    assert market_env.market.project_count() == pid - 1
    # nonces were re-read after the revert: sending works straight away
    assert market_env.create_project() == pid
    with pytest.raises(ConfigError):
        increase_time(w3, -1)


def test_nonces_recover_after_an_outside_send(market_env):
    """A transaction sent by another connection with the same key does not jam ours."""
    env = market_env
    other = connect(env.node.rpc_url)
    assert env.create_project() == 1
    from market.chain import LearningMarket

    LearningMarket(other, env.market.address).create_project(
        env.owner, b"\1" * 32, env.aggregator.address, 1, 1, 1, 1, 1
    )
    # our counter is now stale (too low): the send re-reads the chain's nonce and retries
    assert env.create_project() == 3


def test_decode_revert_builtin_errors():
    error = keccak(text="Error(string)")[:4]
    from eth_abi import encode

    exc = decode_revert(error + encode(["string"], ["boom"]), {})
    assert (exc.error_name, exc.args) == ("Error", ("boom",))
    panic = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    exc = decode_revert(panic, {})
    assert exc.error_name == "Panic" and exc.args[0] == 0x11
    exc = decode_revert(b"\xde\xad\xbe\xef", {})
    assert exc.error_name == "Unknown"
    assert isinstance(exc, ContractRevert) and "Unknown" in str(exc)


def test_error_selectors_cover_the_abi(artifacts):
    table = error_selectors(artifacts["LearningMarket"].abi)
    names = {name for name, _ in table.values()}
    expected = {
        "NotAggregator", "NotOwner", "WrongBudget", "RoundNotOpen", "CommitWindowClosed",
        "RevealWindowNotOpen", "RevealWindowClosed", "AlreadyCommitted", "NotCommitted",
        "AlreadyRevealed", "CommitmentMismatch", "NotAdmitted", "FinalizeTooEarly",
        "FinalizeTooLate", "TotalExceedsBudget", "InvalidProof", "AlreadyClaimed",
        "RoundNotFinalized", "RoundNotExpirable", "NotRevealed", "ProjectNotEnded",
        "NothingToRefund", "PreviousRoundNotSettled", "NoRoundsLeft", "ProjectIsCancelled",
        "UnknownProject", "ZeroAddress", "ZeroRounds", "TransferFailed",
    }  # fmt: skip
    assert expected <= names


def test_revert_once_mined_is_decoded(market_env):
    """Estimate passes (latest block inside the window) but the mined block is past the
    deadline: the receipt has status 0 and the replay names the error."""
    from market.chain import compute_commitment, set_next_block_timestamp

    env, m = market_env, market_env.market
    pid = env.create_project()
    rnd, _ = m.open_round(env.aggregator, pid, b"\1" * 32)
    deadline = m.get_round(pid, rnd).commit_deadline
    trainer = env.trainers[0]
    set_next_block_timestamp(env.w3, deadline + 1)
    with pytest.raises(ContractRevert) as info:
        m.commit_update(
            trainer, pid, rnd, compute_commitment(b"\2" * 32, trainer.address, b"\3" * 32)
        )
    assert info.value.error_name == "CommitWindowClosed"
    assert info.value.function == "commitUpdate"


def test_contract_revert_survives_pickling():
    import pickle

    exc = ContractRevert("NotAdmitted", ("0x" + "11" * 20,), selector=b"\1\2\3\4", function="f")
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.error_name, copy.args, copy.selector, str(copy)) == (
        exc.error_name,
        exc.args,
        exc.selector,
        str(exc),
    )


def test_market_wrapper_refuses_an_address_without_code(w3):
    from market.chain import LearningMarket
    from market.errors import ChainError

    with pytest.raises(ChainError, match="no contract"):
        LearningMarket(w3, "0x" + "12" * 20)


def test_wrapper_errors_are_chain_errors(market_env):
    from market.errors import ChainError

    m = market_env.market
    with pytest.raises(ConfigError, match="aggregator must be"):
        m.create_project(market_env.owner, b"\1" * 32, "not an address", 1, 1, 1, 1, 1)
    with pytest.raises(ConfigError, match="spec_digest must be 32 bytes"):
        m.create_project(market_env.owner, b"\1", market_env.owner.address, 1, 1, 1, 1, 1)
    with pytest.raises(ChainError, match="createProject failed"):
        m.create_project(market_env.owner, b"\1" * 32, market_env.owner.address, -1, 1, 1, 1, 1)
    with pytest.raises(ChainError, match="getProject failed"):
        m.get_project(-1)
