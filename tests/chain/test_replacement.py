"""A transaction stuck in the pool is replaced (same nonce, higher fees), never doubled."""

from __future__ import annotations

import threading
import time

import pytest

from market.chain import AnvilNode, connect, dev_accounts, reset_nonces
from market.chain import client as chain_client
from market.errors import ChainError


@pytest.fixture
def manual_chain():
    with AnvilNode.start() as node:
        w3 = connect(node.rpc_url)
        w3.provider.make_request("evm_setAutomine", [False])  # nothing mines until we say so
        yield w3
        reset_nonces(w3)


def test_a_pending_transaction_is_replaced_with_higher_fees(manual_chain, monkeypatch):
    w3 = manual_chain
    monkeypatch.setattr(chain_client, "REPLACE_AFTER", 0.3)
    sender, receiver = dev_accounts(w3)[:2]
    start_nonce = w3.eth.get_transaction_count(sender.address)
    result: dict = {}

    def send() -> None:
        tx = {"to": receiver.address, "value": 12345}
        result["receipt"] = chain_client.send_transaction(w3, sender, tx)

    worker = threading.Thread(target=send)
    worker.start()
    time.sleep(1.2)  # long enough for at least one replacement
    w3.provider.make_request("evm_mine", [])
    worker.join(timeout=30)
    receipt = result["receipt"]
    assert receipt["status"] == 1
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    first_fee = mined["maxFeePerGas"]
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    ours = [t for t in block["transactions"] if t["from"] == sender.address]
    assert len(ours) == 1 and ours[0]["nonce"] == start_nonce  # one transaction, not two
    # the mined one is a replacement: its fee is above what the first attempt offered
    base = w3.eth.get_block(receipt["blockNumber"] - 1)["baseFeePerGas"]
    assert first_fee > 2 * base + w3.eth.max_priority_fee
    assert w3.eth.get_transaction_count(sender.address) == start_nonce + 1


def test_a_transaction_nobody_mines_fails_clearly(manual_chain, monkeypatch):
    w3 = manual_chain
    monkeypatch.setattr(chain_client, "REPLACE_AFTER", 0.1)
    monkeypatch.setattr(chain_client, "RECEIPT_TIMEOUT", 0.6)
    sender, receiver = dev_accounts(w3)[2:4]
    with pytest.raises(ChainError, match="not mined within"):
        chain_client.send_transaction(w3, sender, {"to": receiver.address, "value": 1})
