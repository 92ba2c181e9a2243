"""Plain helpers for the chain tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from market.chain import (
    ContractRevert,
    TxResult,
    compute_commitment,
    deploy_contract,
    send_transaction,
)


def digest(label: str) -> bytes:
    """A 32-byte digest standing in for a CID's sha2-256 digest."""
    return hashlib.sha256(label.encode()).digest()


@dataclass(frozen=True)
class Update:
    trainer: LocalAccount
    update_digest: bytes
    salt: bytes

    @property
    def commitment(self) -> bytes:
        return compute_commitment(self.update_digest, self.trainer.address, self.salt)


def make_update(trainer: LocalAccount, label: str = "") -> Update:
    tag = f"{trainer.address}:{label}"
    return Update(trainer, digest("update:" + tag), digest("salt:" + tag))


def expect_revert(error_name: str, fn, *args, **kwargs) -> ContractRevert:
    """Call ``fn`` and check it reverts with the custom error ``error_name``."""
    with pytest.raises(ContractRevert) as info:
        fn(*args, **kwargs)
    assert info.value.error_name == error_name, str(info.value)
    return info.value


class MarketActor:
    """A test-only contract, deployed for this test, playing a market role: ``call`` sends
    a market function through its ``execute`` so the contract is msg.sender."""

    artifact = ""

    def __init__(self, env, sender: LocalAccount) -> None:
        artifact = env.artifacts[self.artifact]
        self.env, self.sender = env, sender
        self.address = deploy_contract(
            env.w3, sender, artifact.abi, artifact.bytecode, env.market.address
        )
        self.contract = env.w3.eth.contract(address=self.address, abi=artifact.abi)

    def _send(self, fn, function: str, value: int = 0) -> TxResult:
        tx = {"to": self.address, "data": fn._encode_transaction_data(), "value": value}
        receipt = send_transaction(
            self.env.w3, self.sender, tx, on_revert=self.env.market._revert(function)
        )
        return TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            gas_used=receipt["gasUsed"],
            block_number=receipt["blockNumber"],
            events=self.env.market.decode_logs(receipt["logs"]),
        )

    def call(self, function: str, *args, value: int = 0) -> TxResult:
        """Call the market's ``function`` with this contract as msg.sender."""
        data = self.env.market.contract.encode_abi(function, args=list(args))
        return self._send(self.contract.functions.execute(data), function, value)


class ContractActor(MarketActor):
    """The ReentrantClaimer: misbehaves when paid (see ``set_mode``)."""

    artifact = "ReentrantClaimer"
    ACCEPT, REENTER, REJECT = 0, 1, 2

    def set_mode(self, mode: int, function: str | None = None, *args) -> None:
        """ACCEPT, REJECT payments, or REENTER: call ``function(*args)`` when paid."""
        data = self.env.market.contract.encode_abi(function, args=list(args)) if function else b""
        self._send(self.contract.functions.setMode(mode, data), "setMode")

    def view(self, name: str):
        return getattr(self.contract.functions, name)().call()
