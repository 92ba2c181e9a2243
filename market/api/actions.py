"""Transactions the page asks for on the dev chain, sent with the chosen dev account's key.

Every input is validated before anything is stored or sent, so a bad form never leaves a
half-created project: the spec upload is content-addressed (uploading it twice is
harmless) and the project exists only once ``createProject`` is mined. Each transaction
is recorded (hash, status, error) so the page can show it.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field
from web3 import Web3

from market import owner
from market.chain import ContractRevert
from market.errors import ConfigError, MarketError
from market.reputation import AdmissionPolicy
from market.storage.cid import digest_of_cid, normalize_cid
from market.trainer.model import ModelSpec

from .state import Services

WEI_PER_ETH = 10**18
MAX_WINDOW = 365 * 86_400
MAX_HIDDEN = 4096


class SpecRequest(BaseModel):
    """What the create form's first step uploads: the model and the training rules."""

    name: str = Field(min_length=1, max_length=200)
    input_dim: int = Field(64, ge=1, le=100_000)
    hidden: list[int] = Field(default_factory=lambda: [64, 64], max_length=16)
    num_classes: int = Field(10, ge=2, le=100_000)
    seed: int = 0
    rule: str = "guard"
    rule_params: dict[str, Any] = Field(default_factory=dict)
    admission: dict[str, Any] = Field(default_factory=lambda: {"policy": "open"})
    max_update_norm: float | None = Field(None, gt=0)


class ProjectRequest(BaseModel):
    """The create form's second step: escrow the budget for a published spec."""

    account: str
    spec_cid: str
    rounds: int = Field(ge=1, le=10_000)
    reward_per_round_eth: str
    submission_window: int = Field(ge=1, le=MAX_WINDOW)
    reveal_window: int = Field(ge=1, le=MAX_WINDOW)
    finalize_window: int = Field(ge=1, le=MAX_WINDOW)
    aggregator: str | None = None


def parse_eth(value: str) -> int:
    try:
        wei = Decimal(value.strip()) * WEI_PER_ETH
    except (InvalidOperation, AttributeError) as exc:
        raise ConfigError(f"reward per round {value!r} is not an ETH amount like 0.5") from exc
    if wei != wei.to_integral_value() or wei <= 0:
        raise ConfigError(f"reward per round {value!r} must be positive and at least one wei")
    return int(wei)


def check_spec_request(req: SpecRequest) -> tuple[ModelSpec, AdmissionPolicy | None]:
    """Every check that can fail, before anything is written."""
    from market.aggregator.rules import get_rule
    from market.reputation import policy_from_spec

    if any(not 1 <= h <= MAX_HIDDEN for h in req.hidden):
        raise ConfigError(f"hidden layer widths must be 1..{MAX_HIDDEN}, got {req.hidden}")
    get_rule(req.rule, **req.rule_params)  # unknown rule or bad parameter: ConfigError
    try:
        policy = policy_from_spec(req.admission)
    except MarketError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"admission policy {req.admission}: {exc}") from exc
    model = ModelSpec(
        input_dim=req.input_dim, hidden=tuple(req.hidden), num_classes=req.num_classes
    )
    return model, policy


def publish_spec(svc: Services, req: SpecRequest) -> dict[str, Any]:
    """Upload the initial model and the spec; return the spec's CID and document."""
    model, policy = check_spec_request(req)
    spec_cid, spec = owner.publish_spec(
        svc.store,
        name=req.name,
        model=model,
        seed=req.seed,
        rule=req.rule,
        rule_params=req.rule_params,
        max_update_norm=req.max_update_norm,
        admission=policy.to_dict() if policy else {"policy": "open"},
    )
    return {"spec_cid": spec_cid, "initial_model_cid": spec.initial_model, "spec": spec.__dict__}


class TxLog:
    """Transactions the page sent, newest first (in memory: the chain keeps the truth)."""

    def __init__(self, limit: int = 200) -> None:
        self.entries: list[dict[str, Any]] = []
        self.limit = limit

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"time": int(time.time()), **entry}
        self.entries.insert(0, entry)
        del self.entries[self.limit :]
        return entry


def prepare_create(svc: Services, req: ProjectRequest) -> dict[str, Any]:
    """The unsigned ``createProject`` transaction for a browser wallet (EIP-1193) to send."""
    reward = parse_eth(req.reward_per_round_eth)
    digest = _checked_spec_digest(svc, req.spec_cid)
    if not req.aggregator:
        raise ConfigError("a browser-wallet project needs the aggregator's address")
    fn = svc.market.contract.functions.createProject(
        digest,
        Web3.to_checksum_address(req.aggregator),
        req.rounds,
        reward,
        req.submission_window,
        req.reveal_window,
        req.finalize_window,
    )
    return {
        "from": Web3.to_checksum_address(req.account),
        "to": svc.market.address,
        "data": fn._encode_transaction_data(),
        "value": hex(req.rounds * reward),
        "chainId": hex(svc.chain_id),
    }


def _checked_spec_digest(svc: Services, spec_cid: str) -> bytes:
    try:
        cid = normalize_cid(spec_cid.strip())
    except MarketError as exc:
        raise ConfigError(f"spec CID {spec_cid!r} is not a CID: {exc}") from exc
    digest = digest_of_cid(cid)
    svc.spec(digest)  # must be a readable spec in our store, or the project is useless
    return digest


def create_project(svc: Services, log: TxLog, req: ProjectRequest) -> dict[str, Any]:
    """Check the spec is in the store and valid, then send ``createProject`` with the budget."""
    owner = svc.dev_account(req.account)
    reward = parse_eth(req.reward_per_round_eth)
    digest = _checked_spec_digest(svc, req.spec_cid)
    aggregator = req.aggregator or svc.dev_accounts()[2].address
    budget = req.rounds * reward
    balance = svc.w3.eth.get_balance(owner.address)
    if balance < budget:
        raise ConfigError(
            f"{owner.address} holds {Decimal(balance) / WEI_PER_ETH} ETH, less than the "
            f"budget of {Decimal(budget) / WEI_PER_ETH} ETH (rounds × reward per round)"
        )
    entry = {"action": "createProject", "from": owner.address, "value_wei": str(budget)}
    try:
        with svc.tx_lock:
            project_id, tx = svc.market.create_project(
                owner,
                digest,
                aggregator,
                req.rounds,
                reward,
                req.submission_window,
                req.reveal_window,
                req.finalize_window,
            )
    except ContractRevert as exc:
        log.add({**entry, "status": "reverted", "error": exc.error_name, "message": str(exc)})
        raise
    except MarketError as exc:
        log.add({**entry, "status": "failed", "message": str(exc)})
        raise
    done = log.add(
        {
            **entry,
            "status": "mined",
            "tx_hash": tx.tx_hash,
            "block": tx.block_number,
            "gas_used": tx.gas_used,
            "project_id": project_id,
        }
    )
    return done


def owner_tx(svc: Services, log: TxLog, action: str, account: str, project_id: int) -> dict:
    """``cancelProject`` or ``refund`` for the project's owner."""
    owner = svc.dev_account(account)
    entry = {"action": action, "from": owner.address, "project_id": project_id}
    send = {"cancelProject": svc.market.cancel_project, "refund": svc.market.refund}[action]
    try:
        with svc.tx_lock:
            tx = send(owner, project_id)
    except ContractRevert as exc:
        log.add({**entry, "status": "reverted", "error": exc.error_name, "message": str(exc)})
        raise
    return log.add({**entry, "status": "mined", "tx_hash": tx.tx_hash, "block": tx.block_number})
