"""Admission for a round, end to end: applications in, a published list and a root on chain.

The service side (:func:`open_round_with_admission`): sync the reputation index, take the
signed applications stored for the next round, run the project's policy with a public seed
(the hash of the last block indexed), publish the admission document on the store, index
its CID by round in the database, and open the round with its Merkle root. A project with
open admission gets the zero root and no document.

The trainer side (:func:`admission_proof`): the chain holds only the root, so the document
is found by CID — given (``--admission-cid``) or looked up in the database index — and is
trusted only once its root equals the round's on-chain ``admissionRoot`` and the proof folds
to it: a wrong or forged document cannot give a trainer a proof the contract would accept.

The document names everything needed to re-derive the list: the MeritRank parameters, the
seed block, the signed applications and the policy; anyone indexing the chain up to the
seed block gets the same list, root and proofs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from market.chain import ZERO32, LearningMarket, TxResult
from market.db import Database
from market.db.reputation import PublishedAdmission, SignedApplication, ensure_tables
from market.errors import ProofError, ReputationError
from market.reputation.admission import Admission, normalise_address
from market.reputation.application import Application, verify_application
from market.reputation.indexer import ReputationIndexer
from market.spec import canonical_json
from market.storage import Store

ADMISSION_FORMAT = "market-admission/1"
ADMISSION_MAX_BYTES = 32 * 1024 * 1024


class RoundOpener(Protocol):
    """What opening a round needs (``market.aggregator.service.Aggregator`` has it)."""

    def open_round(self, project_id: int, admission_root: bytes = ...) -> tuple[int, TxResult]: ...


@dataclass(frozen=True)
class AdmissionRecord:
    """A round's admission as published: root for the chain, CID of the document."""

    project_id: int
    round: int
    root: bytes  # ZERO32: open admission
    cid: str | None  # None: open admission, nothing published
    admission: Admission | None
    document: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "round": self.round,
            "root": "0x" + self.root.hex(),
            "cid": self.cid,
            "open": self.admission is None,
            "admitted": self.admission.admitted if self.admission else None,
            "newcomers": self.admission.newcomers if self.admission else None,
            "refused": self.admission.refused if self.admission else None,
            "dropped": self.document.get("dropped", {}) if self.document else {},
        }


def next_round(market: LearningMarket, project_id: int) -> int:
    """The number the project's next ``openRound`` will get."""
    return market.get_project(project_id).rounds_opened + 1


# ------------------------------------------------------------------------- applications
def record_application(db: Database, app: Application, delivered_to: str | None = None) -> str:
    """Verify a signed application and store it (a newer one replaces the trainer's old one);
    ``delivered_to``: the aggregator API that accepted it, on the trainer's side."""
    trainer = verify_application(app)
    ensure_tables(db.engine)
    with db.session() as s:
        row = s.scalar(
            _application_query(app.market, app.chain_id, app.project_id, app.round, trainer)
        )
        if row is None:
            row = SignedApplication(
                contract=app.market,
                chain_id=app.chain_id,
                project_id=app.project_id,
                round=app.round,
                trainer=trainer,
            )
            s.add(row)
        row.signature = "0x" + app.signature.hex()
        row.delivered_to = delivered_to or row.delivered_to
    return trainer


def stored_application(
    db: Database, market: LearningMarket, project_id: int, round_: int, trainer: str
) -> SignedApplication | None:
    """One trainer's stored application to a round, if any."""
    ensure_tables(db.engine)
    chain_id = int(market.w3.eth.chain_id)
    with db.session() as s:
        return s.scalar(
            _application_query(
                market.address, chain_id, project_id, round_, normalise_address(trainer)
            )
        )


def _application_query(contract: str, chain_id: int, project_id: int, round_: int, trainer: str):  # noqa: ANN202
    return select(SignedApplication).where(
        SignedApplication.contract == contract,
        SignedApplication.chain_id == chain_id,
        SignedApplication.project_id == project_id,
        SignedApplication.round == round_,
        SignedApplication.trainer == trainer,
    )


def stored_applications(
    db: Database, market: LearningMarket, project_id: int, round_: int
) -> list[Application]:
    """The stored applications to one round, in arrival order."""
    ensure_tables(db.engine)
    chain_id = int(market.w3.eth.chain_id)
    with db.session() as s:
        rows = s.scalars(
            select(SignedApplication)
            .where(
                SignedApplication.contract == market.address,
                SignedApplication.chain_id == chain_id,
                SignedApplication.project_id == project_id,
                SignedApplication.round == round_,
            )
            .order_by(SignedApplication.id)
        )
        return [
            Application(
                project_id=r.project_id,
                round=r.round,
                trainer=r.trainer,
                chain_id=r.chain_id,
                market=r.contract,
                signature=bytes.fromhex(r.signature.removeprefix("0x")),
            )
            for r in rows
        ]


# ---------------------------------------------------------------------- service side
def compute_admission(
    indexer: ReputationIndexer, project_id: int, round_: int
) -> tuple[Admission | None, dict[str, Any] | None]:
    """The round's admission and its document, from the chain as indexed now (no writes
    but the index); (None, None) when the project's admission is open."""
    indexer.sync()
    book, market = indexer.book, indexer.market
    project = book.project(project_id)
    if project.policy is None:
        return None, None
    if indexer.last_block is None or indexer.last_hash is None:
        raise ReputationError("the reputation index has read no block yet: sync it first")
    apps = stored_applications(indexer.db, market, project_id, round_)
    seed = bytes.fromhex(indexer.last_hash.removeprefix("0x"))
    admission, dropped = book.admission(
        project_id, round_, apps, seed, indexer.chain_id, market.address
    )
    document = {
        "format": ADMISSION_FORMAT,
        "chain_id": indexer.chain_id,
        "contract": market.address,
        "project_id": project_id,
        "round": round_,
        "policy": project.policy.to_dict(),
        "seeds": list(project.seeds),
        "meritrank": dict(indexer.book_options),
        "seed_block": indexer.last_block,
        "public_seed": indexer.last_hash,
        "applications": [a.to_json() for a in apps],
        "dropped": dropped,
        "admission": admission.to_json(),
    }
    return admission, document


def publish_admission(
    indexer: ReputationIndexer, project_id: int, round_: int | None = None
) -> AdmissionRecord:
    """Compute the admission of ``round_`` (default: the next round), put the document on
    the store, pin it and index its CID by round in the database."""
    market = indexer.market
    number = next_round(market, project_id) if round_ is None else round_
    admission, document = compute_admission(indexer, project_id, number)
    if admission is None or document is None:
        return AdmissionRecord(project_id, number, ZERO32, None, None, None)
    cid = indexer.store.put(canonical_json(document))
    indexer.store.pin(cid)
    index_admission(indexer.db, market, project_id, number, admission, cid)
    return AdmissionRecord(project_id, number, admission.root, cid, admission, document)


def index_admission(
    db: Database,
    market: LearningMarket,
    project_id: int,
    round_: int,
    admission: Admission,
    cid: str,
) -> None:
    """Remember where a round's admission document is (the aggregator when publishing it, a
    trainer once it has checked a fetched copy against the chain's root)."""
    ensure_tables(db.engine)
    chain_id = int(market.w3.eth.chain_id)
    with db.session() as s:
        row = s.scalar(_published_query(market.address, chain_id, project_id, round_))
        if row is None:
            row = PublishedAdmission(
                contract=market.address, chain_id=chain_id, project_id=project_id, round=round_
            )
            s.add(row)
        row.root, row.cid = "0x" + admission.root.hex(), cid
        row.admitted = len(admission.admitted)


def open_round_with_admission(
    aggregator: RoundOpener, indexer: ReputationIndexer, project_id: int
) -> tuple[int, TxResult, AdmissionRecord]:
    """Publish the next round's admission and open the round with its root."""
    record = publish_admission(indexer, project_id)
    number, tx = aggregator.open_round(project_id, record.root)
    if number != record.round:
        raise ReputationError(
            f"opened round {number} of project {project_id}, but the admission was computed "
            f"for round {record.round} (someone opened a round meanwhile): recompute it"
        )
    return number, tx, record


def _published_query(contract: str, chain_id: int, project_id: int, round_: int):  # noqa: ANN202
    return select(PublishedAdmission).where(
        PublishedAdmission.contract == contract,
        PublishedAdmission.chain_id == chain_id,
        PublishedAdmission.project_id == project_id,
        PublishedAdmission.round == round_,
    )


# ---------------------------------------------------------------------- trainer side
def published_cid(db: Database, market: LearningMarket, project_id: int, round_: int) -> str:
    """The admission document's CID from the database index, or ReputationError."""
    ensure_tables(db.engine)
    chain_id = int(market.w3.eth.chain_id)
    with db.session() as s:
        row = s.scalar(_published_query(market.address, chain_id, project_id, round_))
    if row is None:
        raise ReputationError(
            f"no admission document indexed for project {project_id} round {round_} in this "
            "database: ask the aggregator for its CID and pass --admission-cid"
        )
    return row.cid


def load_admission(
    store: Store,
    market: LearningMarket,
    project_id: int,
    round_: int,
    *,
    cid: str | None = None,
    db: Database | None = None,
) -> tuple[Admission, dict[str, Any]]:
    """The round's admission document, checked against the on-chain ``admissionRoot``."""
    root = market.get_round(project_id, round_).admission_root
    if root == ZERO32:
        raise ReputationError(f"round {round_} of project {project_id} has open admission")
    if cid is None:
        if db is None:
            raise ReputationError("give the admission document's CID or a database to find it")
        cid = published_cid(db, market, project_id, round_)
    data = store.get(cid, max_size=ADMISSION_MAX_BYTES)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ReputationError(f"admission document {cid} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != ADMISSION_FORMAT:
        raise ReputationError(f"{cid} is not a {ADMISSION_FORMAT} document")
    where = (doc.get("chain_id"), doc.get("contract"), doc.get("project_id"), doc.get("round"))
    want = (int(market.w3.eth.chain_id), market.address, project_id, round_)
    if where != want:
        raise ReputationError(f"admission document {cid} is for {where}, not {want}")
    admission = Admission.from_json(doc.get("admission", {}))
    if admission.root != bytes(root):
        raise ReputationError(
            f"admission document {cid} has root 0x{admission.root.hex()}, but round {round_} "
            f"was opened with 0x{bytes(root).hex()}: it is not this round's list"
        )
    return admission, doc


def admission_proof(
    store: Store,
    market: LearningMarket,
    address: str,
    project_id: int,
    round_: int,
    *,
    cid: str | None = None,
    db: Database | None = None,
) -> list[bytes]:
    """``address``'s proof for ``commitUpdate`` ([] when admission is open), verified
    against the on-chain root before it is used."""
    from market.proofs.merkle import MerkleTree, address_leaf

    root = market.get_round(project_id, round_).admission_root
    if root == ZERO32:
        return []
    admission, _ = load_admission(store, market, project_id, round_, cid=cid, db=db)
    address = normalise_address(address)
    if address not in admission.proofs:
        reason = admission.refused.get(address, "it did not apply (market trainer apply)")
        raise ReputationError(
            f"{address} is not admitted to round {round_} of project {project_id}: {reason}"
        )
    proof = admission.proof_for(address)
    if not MerkleTree.verify(root, address_leaf(address), proof):
        raise ProofError(f"admission proof of {address} does not fold to the on-chain root")
    return proof


def verify_admission(
    market: LearningMarket,
    store: Store,
    project_id: int,
    round_: int,
    *,
    cid: str | None = None,
    db: Database | None = None,
) -> dict[str, Any]:
    """Re-derive a published admission from the chain and the store alone, and compare.

    A fresh index (in a scratch database) reads the chain up to the document's seed block
    with the document's MeritRank parameters; the policy comes from the project's spec, the
    public seed from the chain's hash of that block, the applicants from the signed
    applications (each re-verified). ``ok`` when the list and root come out the same.
    """
    import tempfile

    admission, doc = load_admission(store, market, project_id, round_, cid=cid, db=db)
    seed_block = int(doc["seed_block"])
    chain_hash = "0x" + bytes(market.w3.eth.get_block(seed_block)["hash"]).hex()
    problems: list[str] = []
    if chain_hash != doc.get("public_seed"):
        problems.append(f"public seed {doc.get('public_seed')} is not block {seed_block}'s hash")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Database(f"sqlite:///{tmp}/verify.db")
        try:
            indexer = ReputationIndexer(market, store, scratch, book_options=doc["meritrank"])
            indexer.sync(to_block=seed_block)
            policy = indexer.book.project(project_id).policy
            apps = [Application.from_json(a) for a in doc["applications"]]
            again = None
            if policy is None:
                problems.append("the project's spec has open admission")
            else:
                if policy.to_dict() != doc["policy"]:
                    problems.append(f"document policy {doc['policy']} is not the spec's")
                again, _ = indexer.book.admission(
                    project_id,
                    round_,
                    apps,
                    bytes.fromhex(chain_hash.removeprefix("0x")),
                    int(market.w3.eth.chain_id),
                    market.address,
                )
        finally:
            scratch.dispose()
    if again is not None and again.root != admission.root:
        problems.append(
            f"re-derived root 0x{again.root.hex()} differs from the published 0x"
            f"{admission.root.hex()} (admitted again: {again.admitted})"
        )
    return {
        "ok": not problems,
        "problems": problems,
        "root": "0x" + admission.root.hex(),
        "seed_block": seed_block,
        "meritrank": doc["meritrank"],
    }
