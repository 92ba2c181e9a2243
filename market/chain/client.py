"""Connecting, accounts, local signing with our own nonces, and dev-chain helpers.

Keys never leave this process: transactions are signed locally with eth_account and sent
raw. Nonces are counted here, one counter per account per connection, and re-read from
the chain whenever a send fails (or the dev chain is reverted to a snapshot).
Dev keys (anvil's well-known mnemonic) are refused on any chain but 31337.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from market.errors import ChainError, ConfigError

DEV_CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10
GAS_MARGIN = 1.2
GAS_EXTRA = 10_000
RECEIPT_TIMEOUT = 120.0
POLL_LATENCY = 0.05
# A transaction still pending after this many seconds is re-sent with the same nonce and
# fees raised by FEE_BUMP (nodes want ≥ 10 % more to replace a pending one), at most
# MAX_REPLACEMENTS times: a fee spike must not leave a round's commit or finalize stuck.
REPLACE_AFTER = float(os.environ.get("MARKET_TX_REPLACE_AFTER", "30"))
MAX_REPLACEMENTS = 3
FEE_BUMP = (9, 8)


def connect(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A Web3 connected to ``rpc_url``; raises ChainError if nothing answers there."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - one real round trip proves the endpoint works
    except Exception as exc:
        raise ChainError(
            f"cannot reach an Ethereum JSON-RPC node at {rpc_url} ({exc.__class__.__name__}): "
            "start one (`market dev chain` or anvil) or fix the RPC URL"
        ) from exc
    return w3


def require_dev_chain(w3: Web3, what: str) -> None:
    chain_id = w3.eth.chain_id
    if chain_id != DEV_CHAIN_ID:
        raise ConfigError(
            f"{what} is only allowed on the local dev chain (chain id {DEV_CHAIN_ID}), "
            f"but the node reports chain id {chain_id}: use a real key "
            "(MARKET_PRIVATE_KEY or a keystore file)"
        )


@lru_cache(maxsize=1)
def _dev_accounts() -> tuple[LocalAccount, ...]:
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(DEV_ACCOUNT_COUNT)
    )


def dev_accounts(w3: Web3) -> list[LocalAccount]:
    """Anvil's ten funded dev accounts. Refused unless the chain id is 31337."""
    require_dev_chain(w3, "using the public dev keys")
    return list(_dev_accounts())


def load_account(
    w3: Web3,
    *,
    key_env: str = "MARKET_PRIVATE_KEY",
    keystore: Path | None = None,
    password_env: str = "MARKET_KEYSTORE_PASSWORD",
    dev_index: int | None = None,
) -> LocalAccount:
    """The signing account: a keystore file (password from ``password_env``), else the
    private key in ``key_env``, else dev account ``dev_index`` (chain 31337 only)."""
    if keystore is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(f"keystore {keystore} given but ${password_env} is not set")
        try:
            encrypted = json.loads(Path(keystore).read_text())
            return Account.from_key(Account.decrypt(encrypted, password))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot open keystore {keystore}: {exc.__class__.__name__} "
                "(wrong path, not a keystore JSON, or wrong password)"
            ) from None
    key = os.environ.get(key_env)
    if key:
        try:
            return Account.from_key(key.strip())
        except Exception:
            raise ConfigError(f"${key_env} does not hold a valid private key") from None
    if dev_index is not None:
        accounts = dev_accounts(w3)
        if not 0 <= dev_index < len(accounts):
            raise ConfigError(f"dev_index must be in 0..{len(accounts) - 1}, got {dev_index}")
        return accounts[dev_index]
    raise ConfigError(
        f"no signing key: set ${key_env}, pass a keystore file (password in ${password_env}), "
        "or use a dev account on a local chain"
    )


# ----------------------------------------------------------------- sending


@dataclass
class _Nonces:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next: dict[str, int] = field(default_factory=dict)
    chain_id: int | None = None  # a connection's chain id never changes: ask once


_NONCES: weakref.WeakKeyDictionary[Web3, _Nonces] = weakref.WeakKeyDictionary()
_NONCES_LOCK = threading.Lock()


def _nonces_unlocked(w3: Web3) -> _Nonces:
    state = _NONCES.get(w3)
    if state is None:
        state = _NONCES[w3] = _Nonces()
    return state


def _nonces(w3: Web3) -> _Nonces:
    with _NONCES_LOCK:
        return _nonces_unlocked(w3)


def reset_nonces(w3: Web3 | None = None) -> None:
    """Forget counted nonces of ``w3`` (of every connection if None); they are re-read from
    the chain on the next send."""
    with _NONCES_LOCK:
        states = list(_NONCES.values()) if w3 is None else [_nonces_unlocked(w3)]
    for state in states:
        with state.lock:
            state.next.clear()


SentHook = Callable[[str, int], None]
_SENT_HOOK: ContextVar[SentHook | None] = ContextVar("market_sent_hook", default=None)


@contextmanager
def on_sent(hook: SentHook) -> Iterator[None]:
    """Call ``hook(tx_hash, nonce)`` as soon as the node accepts a transaction sent inside
    this block (and each fee-bumped replacement), before waiting for its receipt: a caller
    records the hash durably, so after a crash it looks the transaction up by hash."""
    token = _SENT_HOOK.set(hook)
    try:
        yield
    finally:
        _SENT_HOOK.reset(token)


def _announce(tx_hash: bytes, nonce: int) -> None:
    hook = _SENT_HOOK.get()
    if hook is not None:
        hook("0x" + bytes(tx_hash).hex(), nonce)


def send_transaction(
    w3: Web3, account: LocalAccount, tx: dict[str, Any], *, on_revert=None
) -> dict:
    """Estimate gas (surfacing reverts before sending), sign, send, wait; return the receipt.

    ``on_revert(exc)`` turns a web3 ContractLogicError into our ContractRevert.
    """
    tx = dict(tx)
    tx["from"] = account.address
    tx.setdefault("value", 0)
    state = _nonces(w3)
    if state.chain_id is None:
        state.chain_id = w3.eth.chain_id
    tx.setdefault("chainId", state.chain_id)
    try:
        estimate = w3.eth.estimate_gas(tx)
    except ContractLogicError as exc:
        if on_revert is not None:
            raise on_revert(exc) from None
        raise ChainError(f"transaction would revert: {exc}") from exc
    tx["gas"] = int(estimate * GAS_MARGIN) + GAS_EXTRA
    if "maxFeePerGas" not in tx and "gasPrice" not in tx:
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            tx["gasPrice"] = w3.eth.gas_price
        else:
            priority = w3.eth.max_priority_fee
            tx["maxPriorityFeePerGas"] = priority
            tx["maxFeePerGas"] = 2 * base_fee + priority
    with state.lock:
        address = account.address
        for attempt in (1, 2):
            if address not in state.next:
                state.next[address] = w3.eth.get_transaction_count(address, "pending")
            tx["nonce"] = state.next[address]
            signed = account.sign_transaction(tx)
            try:
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                break
            except Exception as exc:
                state.next.pop(address, None)  # re-read from the chain
                if isinstance(exc, ContractLogicError) and on_revert is not None:
                    raise on_revert(exc) from None
                if attempt == 1 and "nonce" in str(exc).lower():
                    continue  # someone else used this key: retry once with the chain's nonce
                raise ChainError(f"sending the transaction failed: {exc}") from exc
        state.next[address] += 1
    _announce(tx_hash, tx["nonce"])  # outside the nonce lock: the hook may write a database
    receipt = _wait_or_replace(w3, account, tx, tx_hash)
    if receipt["status"] != 1:
        _raise_mined_revert(w3, tx, receipt, on_revert)
    return receipt


def _wait_or_replace(w3: Web3, account: LocalAccount, tx: dict, tx_hash: bytes) -> dict:
    """The receipt of ``tx`` or of a fee-bumped replacement with the same nonce.

    Only one transaction per nonce can ever be mined, so replacing never double-sends:
    whichever of the hashes is mined first is the outcome.
    """
    hashes = [tx_hash]
    give_up = time.monotonic() + RECEIPT_TIMEOUT
    for replacement in range(MAX_REPLACEMENTS + 1):
        bump_at = min(give_up, time.monotonic() + REPLACE_AFTER)
        while time.monotonic() < bump_at:
            for candidate in hashes:
                try:
                    return w3.eth.get_transaction_receipt(candidate)
                except TransactionNotFound:
                    pass
            time.sleep(POLL_LATENCY)
        if time.monotonic() >= give_up or replacement == MAX_REPLACEMENTS:
            break
        _bump_fees(tx)
        try:
            hashes.append(w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
        except Exception:  # noqa: BLE001 - mined meanwhile, or still underpriced: keep waiting
            continue
        _announce(hashes[-1], tx["nonce"])
    reset_nonces(w3)
    shown = ", ".join("0x" + bytes(h).hex() for h in hashes)
    raise ChainError(
        f"transaction not mined within {RECEIPT_TIMEOUT:g}s (sent as {shown}): "
        "is the node mining (block time) and the fee high enough?"
    )


def _bump_fees(tx: dict) -> None:
    num, den = FEE_BUMP
    for key in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
        if key in tx:
            tx[key] = -(-tx[key] * num // den) + 1  # round up, and always move


def _raise_mined_revert(w3: Web3, tx: dict, receipt: dict, on_revert) -> None:
    """Replay a transaction that reverted once mined, to recover its error.

    First on its own block (a reverted transaction changed no contract state, and the
    block's clock is the one it saw: a closed window shows there), then on the parent
    block's state, then on the latest (older states may be pruned): the first revert
    found names the error."""
    call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
    for block in (receipt["blockNumber"], receipt["blockNumber"] - 1, "latest"):
        try:
            w3.eth.call(call, block)
        except ContractLogicError as exc:
            if on_revert is not None:
                raise on_revert(exc) from None
            raise ChainError(f"transaction reverted: {exc}") from exc
        except Exception:  # noqa: BLE001 - state not available at that block: try the next
            continue
    raise ChainError(
        f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted once mined "
        "(out of gas, or the state or clock changed between estimate and mining): retry it"
    )


# ------------------------------------------------------------ dev helpers


def chain_time(w3: Web3) -> int:
    """Timestamp of the latest block."""
    return int(w3.eth.get_block("latest")["timestamp"])


def increase_time(w3: Web3, seconds: int) -> int:
    """Move the dev chain's clock forward and mine a block; returns the new chain time."""
    require_dev_chain(w3, "moving the clock")
    if seconds < 0:
        raise ConfigError(f"time only moves forward, got {seconds}s")
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])
    return chain_time(w3)


def mine(w3: Web3, blocks: int = 1) -> None:
    """Mine ``blocks`` empty blocks on the dev chain."""
    require_dev_chain(w3, "mining on demand")
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])


def snapshot(w3: Web3) -> str:
    """Snapshot the dev chain's state; :func:`revert` returns to it (once)."""
    require_dev_chain(w3, "snapshots")
    return str(w3.provider.make_request("evm_snapshot", [])["result"])


def revert(w3: Web3, snap: str) -> None:
    """Return the dev chain to ``snap`` and forget every connection's counted nonces
    (the whole chain went back, whoever was counting)."""
    require_dev_chain(w3, "reverting to a snapshot")
    ok = w3.provider.make_request("evm_revert", [snap]).get("result")
    reset_nonces()
    if not ok:
        raise ChainError(f"the node refused to revert to snapshot {snap} (already used?)")


def set_next_block_timestamp(w3: Web3, timestamp: int) -> None:
    """Make the dev chain's next block carry exactly ``timestamp`` (for boundary tests)."""
    require_dev_chain(w3, "setting block timestamps")
    w3.provider.make_request("evm_setNextBlockTimestamp", [int(timestamp)])
