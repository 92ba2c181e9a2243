"""Typed wrapper around the LearningMarket contract: one method per contract function.

Writes take the signing account first and return a :class:`TxResult` (plus the new id for
``create_project`` / ``open_round``); reverts raise :class:`ContractRevert` named after the
contract's custom error. Reads return dataclasses. Event args are given in snake_case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError

from market.chain.client import send_transaction
from market.chain.compile import compile_contracts
from market.chain.errors import ContractRevert, _abi_type, decode_revert, error_selectors
from market.chain.types import (
    ZERO32,
    Project,
    Round,
    RoundState,
    Submission,
    TxResult,
    _b32,
    compute_commitment,
)
from market.errors import ChainError, ConfigError, MarketError

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _addr(value: str, name: str) -> str:
    try:
        return to_checksum_address(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} must be a 0x-prefixed 20-byte address, got {value!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, HexBytes | bytes):
        return bytes(value)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


class LearningMarket:
    """A deployed LearningMarket at ``address``."""

    def __init__(self, w3: Web3, address: str, abi: list | None = None) -> None:
        self.w3 = w3
        self.address = _addr(address, "market address")
        if not w3.eth.get_code(self.address):
            raise ChainError(
                f"no contract at {self.address} on chain {w3.eth.chain_id}: "
                "deploy one (`market dev deploy`) or fix the market address"
            )
        self.abi = abi if abi is not None else compile_contracts()["LearningMarket"].abi
        self.contract = w3.eth.contract(address=self.address, abi=self.abi)
        self._errors = error_selectors(self.abi)
        self._events_by_topic = {
            keccak(text=f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"): e["name"]
            for e in self.abi
            if e.get("type") == "event"
        }
        # Called after every successful transaction (e.g. a test's gas report).
        self.on_tx: Callable[[str, TxResult], None] | None = None

    # ------------------------------------------------------------ plumbing

    def _revert(self, function: str) -> Callable[[ContractLogicError], ContractRevert]:
        def convert(exc: ContractLogicError) -> ContractRevert:
            data = exc.data if isinstance(exc.data, str) else None
            if data and data.startswith("0x") and len(data) >= 10:
                return decode_revert(bytes.fromhex(data[2:]), self._errors, function)
            message = str(exc.message if hasattr(exc, "message") else exc)
            reason = message.split("execution reverted: ", 1)[-1]
            return ContractRevert("Error", (reason,), function=function)

        return convert

    def _transact(self, account: LocalAccount, function: str, *args: Any, value: int = 0):
        try:
            fn = getattr(self.contract.functions, function)(*args)
            tx = {"to": self.address, "data": fn._encode_transaction_data(), "value": value}
            receipt = send_transaction(self.w3, account, tx, on_revert=self._revert(function))
        except MarketError:
            raise
        except Exception as exc:  # bad arguments, node unreachable: one error type for callers
            raise ChainError(f"{function} failed: {exc.__class__.__name__}: {exc}") from exc
        result = TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
            events=self.decode_logs(receipt["logs"]),
        )
        if self.on_tx is not None:
            self.on_tx(function, result)
        return result

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self.contract.functions, function)(*args).call()
        except ContractLogicError as exc:
            raise self._revert(function)(exc) from None
        except Exception as exc:
            raise ChainError(f"{function} failed: {exc.__class__.__name__}: {exc}") from exc

    def decode_logs(self, logs: list) -> list[dict]:
        """This contract's events among raw logs (a receipt's or eth_getLogs'), decoded."""
        events = []
        for log in logs:
            if to_checksum_address(log["address"]) != self.address or not log["topics"]:
                continue
            name = self._events_by_topic.get(bytes(log["topics"][0]))
            if name is not None:
                events.append(self._event_dict(self.contract.events[name]().process_log(log)))
        return events

    @staticmethod
    def _event_dict(ev: Any) -> dict:
        return {
            "event": ev["event"],
            "args": {snake(k): _plain(v) for k, v in ev["args"].items()},
            "block_number": int(ev["blockNumber"]),
            "tx_hash": "0x" + bytes(ev["transactionHash"]).hex(),
            "log_index": int(ev["logIndex"]),
        }

    @staticmethod
    def _event_arg(result: TxResult, event: str, arg: str) -> Any:
        for ev in result.events:
            if ev["event"] == event:
                return ev["args"][arg]
        raise ChainError(f"transaction {result.tx_hash} emitted no {event} event")

    # -------------------------------------------------------------- writes

    def create_project(
        self,
        owner: LocalAccount,
        spec_digest: bytes,
        aggregator: str,
        rounds: int,
        reward_per_round: int,
        submission_window: int,
        reveal_window: int,
        finalize_window: int,
        *,
        value: int | None = None,
    ) -> tuple[int, TxResult]:
        """Create a project, sending ``rounds × reward_per_round`` wei (or ``value``)."""
        result = self._transact(
            owner,
            "createProject",
            _b32(spec_digest, "spec_digest"),
            _addr(aggregator, "aggregator"),
            rounds,
            reward_per_round,
            submission_window,
            reveal_window,
            finalize_window,
            value=rounds * reward_per_round if value is None else value,
        )
        return int(self._event_arg(result, "ProjectCreated", "project_id")), result

    def open_round(
        self,
        aggregator: LocalAccount,
        project_id: int,
        global_model: bytes,
        admission_root: bytes = ZERO32,
    ) -> tuple[int, TxResult]:
        result = self._transact(
            aggregator,
            "openRound",
            project_id,
            _b32(global_model, "global_model"),
            _b32(admission_root, "admission_root"),
        )
        return int(self._event_arg(result, "RoundOpened", "round")), result

    def commit_update(
        self,
        trainer: LocalAccount,
        project_id: int,
        round: int,
        commitment: bytes,
        admission_proof: list[bytes] | None = None,
    ) -> TxResult:
        proof = [_b32(p, "admission proof node") for p in admission_proof or []]
        return self._transact(
            trainer, "commitUpdate", project_id, round, _b32(commitment, "commitment"), proof
        )

    def reveal_update(
        self, trainer: LocalAccount, project_id: int, round: int, update_digest: bytes, salt: bytes
    ) -> TxResult:
        return self._transact(
            trainer,
            "revealUpdate",
            project_id,
            round,
            _b32(update_digest, "update_digest"),
            _b32(salt, "salt"),
        )

    def finalize_round(
        self,
        aggregator: LocalAccount,
        project_id: int,
        round: int,
        new_model: bytes,
        report_digest: bytes,
        rewards_root: bytes,
        total: int,
    ) -> TxResult:
        return self._transact(
            aggregator,
            "finalizeRound",
            project_id,
            round,
            _b32(new_model, "new_model"),
            _b32(report_digest, "report_digest"),
            _b32(rewards_root, "rewards_root"),
            total,
        )

    def finalize_round_with_proof(
        self,
        aggregator: LocalAccount,
        project_id: int,
        round: int,
        new_model: bytes,
        report_digest: bytes,
        rewards_root: bytes,
        total: int,
        commits: tuple[int, int],
        proof: list[int],
    ) -> TxResult:
        """``finalizeRoundWithProof``: ``commits`` = (sketchCommit, scoreCommit), ``proof`` the
        Groth16 proof flattened as a0 a1 b00 b01 b10 b11 c0 c1 (see market.proofs.zk)."""
        if len(commits) != 2 or len(proof) != 8:
            raise ConfigError("a score proof has 2 commitments and 8 proof words")
        return self._transact(
            aggregator,
            "finalizeRoundWithProof",
            project_id,
            round,
            _b32(new_model, "new_model"),
            _b32(report_digest, "report_digest"),
            _b32(rewards_root, "rewards_root"),
            total,
            [int(c) for c in commits],
            [int(w) for w in proof],
        )

    def set_proof_verifier(self, owner: LocalAccount, project_id: int, verifier: str) -> TxResult:
        return self._transact(owner, "setProofVerifier", project_id, verifier)

    def proof_verifier(self, project_id: int) -> str:
        """The project's score-proof verifier; the zero address when rounds need no proof."""
        return str(self._call("proofVerifier", project_id))

    def claim(
        self, account: LocalAccount, project_id: int, round: int, amount: int, proof: list[bytes]
    ) -> TxResult:
        nodes = [_b32(p, "proof node") for p in proof]
        return self._transact(account, "claim", project_id, round, amount, nodes)

    def claim_many(
        self,
        account: LocalAccount,
        project_id: int,
        claims: list[tuple[int, int, list[bytes]]],
    ) -> TxResult:
        """``claimMany``: several rounds' rewards in one transaction (one transfer);
        ``claims`` holds (round, amount, proof) per round."""
        rounds = [r for r, _, _ in claims]
        amounts = [a for _, a, _ in claims]
        proofs = [[_b32(p, "proof node") for p in proof] for _, _, proof in claims]
        return self._transact(account, "claimMany", project_id, rounds, amounts, proofs)

    def expire_round(self, account: LocalAccount, project_id: int, round: int) -> TxResult:
        return self._transact(account, "expireRound", project_id, round)

    def claim_expired(self, account: LocalAccount, project_id: int, round: int) -> TxResult:
        return self._transact(account, "claimExpired", project_id, round)

    def cancel_project(self, owner: LocalAccount, project_id: int) -> TxResult:
        return self._transact(owner, "cancelProject", project_id)

    def refund(self, owner: LocalAccount, project_id: int) -> TxResult:
        return self._transact(owner, "refund", project_id)

    # --------------------------------------------------------------- reads

    def project_count(self) -> int:
        return int(self._call("projectCount"))

    def get_project(self, project_id: int) -> Project:
        p = self._call("getProject", project_id)
        return Project(
            project_id,
            p[0],
            p[1],
            bytes(p[2]),
            p[3],
            p[4],
            p[5],
            p[6],
            p[7],
            p[8],
            p[9],
            p[10],
        )

    def get_round(self, project_id: int, round: int) -> Round:
        r = self._call("getRound", project_id, round)
        return Round(
            project_id,
            round,
            RoundState(r[0]),
            *r[1:6],
            *(bytes(x) for x in r[6:11]),
            *r[11:14],
        )

    def get_submission(self, project_id: int, round: int, trainer: str) -> Submission:
        s = self._call("getSubmission", project_id, round, _addr(trainer, "trainer"))
        return Submission(bytes(s[0]), s[1], s[2])

    def revealed_digest(self, project_id: int, round: int, trainer: str) -> bytes | None:
        """The update digest ``trainer`` revealed in the round (from its ``UpdateRevealed``
        event: the contract does not store it), or None."""
        events = self.events(
            "UpdateRevealed", project_id=project_id, round=round, trainer=_addr(trainer, "trainer")
        )
        return events[-1]["args"]["update_digest"] if events else None

    def is_claimed(self, project_id: int, round: int, account: str) -> bool:
        return bool(self._call("isClaimed", project_id, round, _addr(account, "account")))

    def compute_commitment(self, update_digest: bytes, trainer: str, salt: bytes) -> bytes:
        """Computed locally (no RPC); equal to the contract's ``computeCommitment``."""
        return compute_commitment(update_digest, trainer, salt)

    def balance(self) -> int:
        """Wei held by the contract."""
        return int(self.w3.eth.get_balance(self.address))

    def outstanding(self) -> int:
        """Σ over projects of unpaid round budgets + refundable + unopened budgets, read
        from the views: the contract's balance must always equal it (escrow invariant)."""
        owed = 0
        for project_id in range(1, self.project_count() + 1):
            p = self.get_project(project_id)
            owed += p.refundable
            if not p.cancelled:
                owed += (p.rounds - p.rounds_opened) * p.reward_per_round
            for r in range(1, p.rounds_opened + 1):
                owed += self.get_round(project_id, r).unpaid
        return owed

    def events(
        self, name: str, from_block: int = 0, to_block: int | str = "latest", **filters: Any
    ) -> list[dict]:
        """Decoded logs of event ``name``; filters on indexed args (snake or camel case)."""
        try:
            event = self.contract.events[name]
        except Exception:
            known = sorted(set(self._events_by_topic.values()))
            raise ConfigError(f"unknown event {name!r}; the contract emits {known}") from None
        inputs = {snake(i["name"]): i["name"] for i in event.abi["inputs"]}
        argument_filters = {}
        for key, value in filters.items():
            abi_name = inputs.get(snake(key))
            if abi_name is None:
                raise ConfigError(f"event {name} has no argument {key!r}; it has {list(inputs)}")
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
                value = to_checksum_address(value)
            argument_filters[abi_name] = value
        logs = event.get_logs(
            from_block=from_block, to_block=to_block, argument_filters=argument_filters or None
        )
        return [self._event_dict(ev) for ev in logs]


def deploy_market(w3: Web3, deployer: LocalAccount) -> LearningMarket:
    """Deploy a fresh LearningMarket and return its wrapper."""
    artifact = compile_contracts()["LearningMarket"]
    address = deploy_contract(w3, deployer, artifact.abi, artifact.bytecode)
    return LearningMarket(w3, address, artifact.abi)


def deploy_contract(w3: Web3, deployer: LocalAccount, abi: list, bytecode: str, *args: Any) -> str:
    """Deploy any compiled contract; returns its checksum address."""
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    data = factory.constructor(*args).data_in_transaction
    errors = error_selectors(abi)

    def convert(exc: ContractLogicError) -> ContractRevert:
        data_hex = exc.data if isinstance(exc.data, str) else "0x"
        return decode_revert(bytes.fromhex(data_hex[2:]), errors, "constructor")

    receipt = send_transaction(w3, deployer, {"data": data}, on_revert=convert)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError("deployment mined but returned no contract address")
    return to_checksum_address(address)
