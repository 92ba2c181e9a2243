"""Applying to a round: a signed off-chain action (EIP-712), so it costs no gas and no one
can apply in someone else's name.

Why off chain: applications are many and mostly refused; an on-chain ``apply`` would make
every Sybil pay gas but also every honest newcomer, and would add a transaction before the
admission root can be published. A signature over typed data is as unforgeable: the
application names the market contract, the chain id, the project and the round, so it cannot
be replayed elsewhere, and only the trainer's key can produce it. The admission service
keeps the signed applications next to the admitted list, so anyone can re-check who applied.

The typed data is standard EIP-712 (domain ``learning-market``/``1`` with chainId and the
market's address), so wallets show the trainer exactly what they sign.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from market.errors import ReputationError
from market.reputation.admission import normalise_address

DOMAIN_NAME = "learning-market"
DOMAIN_VERSION = "1"
_TYPES = {
    "Application": [
        {"name": "projectId", "type": "uint256"},
        {"name": "round", "type": "uint32"},
        {"name": "trainer", "type": "address"},
    ]
}


@dataclass(frozen=True)
class Application:
    """A trainer's signed request to join ``round`` of ``project_id`` on one market."""

    project_id: int
    round: int
    trainer: str
    chain_id: int
    market: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "round": self.round,
            "trainer": self.trainer,
            "chain_id": self.chain_id,
            "market": self.market,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Application:
        try:
            return cls(
                project_id=int(doc["project_id"]),
                round=int(doc["round"]),
                trainer=normalise_address(doc["trainer"]),
                chain_id=int(doc["chain_id"]),
                market=normalise_address(doc["market"]),
                signature=bytes.fromhex(str(doc["signature"]).removeprefix("0x")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReputationError(f"malformed application: {exc!r}") from exc


def _typed(project_id: int, round_: int, trainer: str, chain_id: int, market: str):
    if not 0 <= project_id < 2**256 or not 0 <= round_ < 2**32:
        raise ReputationError(f"project id {project_id} or round {round_} out of range")
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                **_TYPES,
            },
            "primaryType": "Application",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": normalise_address(market),
            },
            "message": {
                "projectId": project_id,
                "round": round_,
                "trainer": normalise_address(trainer),
            },
        }
    )


def sign_application(
    account: LocalAccount, project_id: int, round_: int, chain_id: int, market: str
) -> Application:
    """The trainer's side: sign an application with its own key."""
    message = _typed(project_id, round_, account.address, chain_id, market)
    signed = account.sign_message(message)
    return Application(
        project_id=project_id,
        round=round_,
        trainer=normalise_address(account.address),
        chain_id=chain_id,
        market=normalise_address(market),
        signature=bytes(signed.signature),
    )


def verify_application(app: Application) -> str:
    """The signer's address if it is the named trainer; ReputationError otherwise."""
    message = _typed(app.project_id, app.round, app.trainer, app.chain_id, app.market)
    try:
        signer = Account.recover_message(message, signature=app.signature)
    except Exception as exc:  # eth_account raises several types for a bad signature
        raise ReputationError(f"unreadable application signature from {app.trainer}") from exc
    if normalise_address(signer) != app.trainer:
        raise ReputationError(f"application for {app.trainer} was signed by {signer}: forged")
    return app.trainer


def verified_applicants(
    applications: Iterable[Application], project_id: int, round_: int, chain_id: int, market: str
) -> tuple[list[str], dict[str, str]]:
    """Trainers with a valid application for this exact round, and why others were dropped.

    Returns (applicants in first-seen order without repeats, {trainer: reason}).
    """
    market = normalise_address(market)
    accepted: list[str] = []
    dropped: dict[str, str] = {}
    for app in applications:
        where = (app.project_id, app.round, app.chain_id, app.market)
        try:
            if where != (project_id, round_, chain_id, market):
                raise ReputationError(f"application is for {where}, not this round")
            trainer = verify_application(app)
        except ReputationError as exc:
            if app.trainer not in accepted:
                dropped[app.trainer] = str(exc)
            continue
        if trainer not in accepted:
            accepted.append(trainer)
            dropped.pop(trainer, None)
    return accepted, dropped
