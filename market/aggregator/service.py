"""The aggregator's round service: open a round, then turn revealed updates into a finalized one.

Finalizing fetches every revealed update by its on-chain digest, validates it (bytes match
the digest, format, shapes, finite values, norm bound; rejects keep a reason), runs the
project's robust rule, scores and splits the reward, publishes the new model and the
round report, and sends ``finalizeRound`` with the reward table's Merkle root.

Re-running is safe: the outcome is a pure function of the chain and the store, it is
recorded before the transaction is sent, and a round already finalized on chain is only
reconciled, never finalized twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session

from market.aggregator.report import RoundReport, SubmissionEntry
from market.aggregator.rewards import SCORE_SCALE, split_rewards, to_points
from market.aggregator.rules import Rule, gram, rule_for
from market.aggregator.scoring import ALIGNMENT_FLOOR, NORM_FLOOR, ScoreDetail, score_details
from market.aggregator.spool import SpooledBatch, scratch_directory
from market.chain import LearningMarket, RoundState, TxResult
from market.db import Database, RoundRecord, TrainerHistory
from market.errors import AggregationError, StorageError, UpdateFormatError
from market.proofs import MerkleTree
from market.proofs.sketch import SKETCH_SCHEME, seed_block, sketch_commitment, sketches
from market.proofs.zk import (
    FIXED_BITS,
    Circuit,
    ScoreProof,
    circuit_of_verifier,
    proof_scores,
    prove,
    statement_of,
)
from market.spec import ProjectSpec
from market.storage import (
    ModelLayout,
    QuantizedUpdate,
    Store,
    TooLargeError,
    decode_model,
    decode_update,
    encode_model,
)
from market.storage.cid import cid_of, digest_of_cid
from market.storage.ipfs import NodeUnavailableError
from market.storage.resolve import get_by_digest

ZERO32 = b"\0" * 32
SKETCH_DIM = 32


@dataclass(frozen=True)
class RoundOutcome:
    project_id: int
    round: int
    model_cid: str
    report_cid: str
    report: RoundReport
    finalize_tx: TxResult | None


def load_spec(market: LearningMarket, store: Store, project_id: int) -> ProjectSpec:
    """The project's spec, fetched by its on-chain digest and verified by the store."""
    project = market.get_project(project_id)
    _, data = get_by_digest(store, project.spec_digest, max_size=1024 * 1024)
    return ProjectSpec.from_bytes(data)


def revealed_updates(
    market: LearningMarket, project_id: int, round_number: int
) -> dict[str, bytes]:
    """Trainer address → revealed update digest, from the chain's ``UpdateRevealed`` events."""
    events = market.events("UpdateRevealed", project_id=project_id, round=round_number)
    return {ev["args"]["trainer"]: ev["args"]["update_digest"] for ev in events}


def gram_digest(g: np.ndarray) -> str:
    """sha256 of the exact Gram matrix's float64 big-endian bytes: lets ``market verify``
    check the Gram bit for bit without publishing n² numbers."""
    return "0x" + hashlib.sha256(np.ascontiguousarray(g, dtype=">f8").tobytes()).hexdigest()


def fetch_valid(store: Store, digest: bytes, layout: ModelLayout, spec: ProjectSpec):  # noqa: ANN201
    """(cid, update, None) for a valid update, else (cid or None, None, reason)."""
    try:
        cid, data = get_by_digest(store, digest, max_size=spec.max_update_bytes)
    except TooLargeError:
        return None, None, f"too_large: over the spec's {spec.max_update_bytes} bytes"
    except NodeUnavailableError:
        raise  # our store is down, not the trainer's fault: abort the round, retry later
    except StorageError as exc:
        return None, None, f"unavailable: {exc}"
    try:
        update = decode_update(data, layout, max_size=spec.max_update_bytes)
    except UpdateFormatError as exc:
        return cid, None, f"{getattr(exc, 'reason', 'malformed')}: {exc}"
    norm = update_norm(update)
    if norm == 0.0:
        return cid, None, "free_rider: the update is all zeros"
    if spec.max_update_norm is not None and norm > spec.max_update_norm:
        return cid, None, f"norm_bound: norm {norm:.4g} exceeds {spec.max_update_norm:.4g}"
    return cid, update, None


def update_norm(update: QuantizedUpdate) -> float:
    """‖u‖ from the int8 blocks: Σ_b s_b² Σ q² with exact integer block sums, no float copy."""
    block = update.block_size
    q = update.q.astype(np.int32)
    padded = np.zeros(len(update.scales) * block, dtype=np.int32)
    padded[: len(q)] = q
    block_sq = (padded.reshape(-1, block) ** 2).sum(axis=1)
    scales = update.scales.astype(np.float64)
    return math.sqrt(math.fsum((scales * scales * block_sq).tolist()))


def layout_of(spec: ProjectSpec) -> ModelLayout:
    return ModelLayout(tuple((name, tuple(shape)) for name, shape in spec.layout))


def replayed_state(
    market: LearningMarket, store: Store, project_id: int, round_number: int, rule: Rule
) -> tuple[dict | None, list[int]]:
    """A stateful rule's state before ``round_number`` and the rounds that built it: every
    earlier finalized round's accepted updates (by their on-chain digests, in its published
    batch order) aggregated in turn, starting from no history — what the aggregator's
    database must hold, and what it starts from without one (a lost database). Raises
    AggregationError when an earlier round cannot be replayed."""
    spec = load_spec(market, store, project_id)
    layout = layout_of(spec)
    state, replayed = None, []
    for number in range(1, round_number):
        chain_round = market.get_round(project_id, number)
        if chain_round.state != RoundState.FINALIZED:
            continue  # expired or cancelled: its updates never counted
        report = RoundReport.from_bytes(get_by_digest(store, chain_round.report_digest)[1])
        if not report.batch_order:
            continue
        revealed = revealed_updates(market, project_id, number)
        with scratch_directory() as scratch:
            batch = SpooledBatch(scratch, layout.size)
            for trainer in report.batch_order:
                if trainer not in revealed:
                    raise AggregationError(
                        f"round {number}: {trainer} is batched but never revealed"
                    )
                _, update, reason = fetch_valid(store, revealed[trainer], layout, spec)
                if update is None:
                    raise AggregationError(
                        f"round {number}: {trainer}'s update is invalid ({reason})"
                    )
                batch.add(update)
            counts = np.ones(batch.n, dtype=np.int64)
            state = rule.aggregate(batch, counts, state, report.batch_order).state
        replayed.append(number)
    return state, replayed


class Aggregator:
    """One aggregator account serving projects on one market contract."""

    def __init__(
        self, market: LearningMarket, store: Store, account: LocalAccount, db: Database
    ) -> None:
        self.market = market
        self.store = store
        self.account = account
        self.db = db
        self._proofs: dict[tuple[int, int], ScoreProof] = {}

    # -- opening -----------------------------------------------------------------------

    def current_model(self, project_id: int) -> bytes:
        """Digest of the model the next round starts from: the last finalized one."""
        project = self.market.get_project(project_id)
        for number in range(project.rounds_opened, 0, -1):
            past = self.market.get_round(project_id, number)
            if past.state == RoundState.FINALIZED:
                return past.new_model
        return digest_of_cid(load_spec(self.market, self.store, project_id).initial_model)

    def open_round(self, project_id: int, admission_root: bytes = ZERO32) -> tuple[int, TxResult]:
        return self.market.open_round(
            self.account, project_id, self.current_model(project_id), admission_root
        )

    # -- finalizing --------------------------------------------------------------------

    def compute_round(
        self, project_id: int, round_number: int
    ) -> tuple[RoundReport, bytes, dict | None]:
        """The report, new model bytes and rule state, from chain state and the store alone.

        Accepted updates are spooled to a scratch directory as they are validated and the
        passes stream them from there (:mod:`market.aggregator.spool`): memory stays
        O(n·chunk) instead of the n×d update matrix."""
        with scratch_directory() as scratch:
            return self._compute_round(project_id, round_number, scratch)

    def _compute_round(
        self, project_id: int, round_number: int, scratch: Path
    ) -> tuple[RoundReport, bytes, dict | None]:
        spec = load_spec(self.market, self.store, project_id)
        layout = layout_of(spec)
        chain_round = self.market.get_round(project_id, round_number)
        global_cid, global_bytes = get_by_digest(self.store, chain_round.global_model)
        global_flat = layout.flatten(decode_model(global_bytes, layout)).astype(np.float64)

        revealed = revealed_updates(self.market, project_id, round_number)
        entries: dict[str, SubmissionEntry] = {}
        accepted: list[tuple[str, str]] = []
        batch = SpooledBatch(scratch, layout.size)
        for trainer, digest in sorted(revealed.items()):
            cid, update, reason = self._fetch_valid(digest, layout, spec)
            if update is None:
                entries[trainer] = SubmissionEntry(trainer, cid, "rejected", reason, 0.0, 0, 0)
            else:
                batch.add(update)
                accepted.append((trainer, cid))

        rule = rule_for(spec.rule, spec.rule_params, spec.layout)
        evidence: dict = {}
        new_state: dict | None = None
        new_flat = global_flat
        seed_number, seed_hash = seed_block(self.market.w3, chain_round.reveal_deadline)
        circuit = self.circuit(project_id)
        sketch_dim = circuit.sketch_dim if circuit else SKETCH_DIM
        order = [trainer for trainer, _ in accepted]
        sketch_rows: list[list[float]] = []
        details: list[ScoreDetail] = []
        gram_hex: str | None = None
        if accepted:
            result = rule.aggregate(
                batch,
                sample_counts=np.ones(len(accepted), dtype=np.int64),
                ids=order,
                state=self._load_state(project_id, round_number, rule),
            )
            new_state = result.state
            evidence = result.evidence
            new_flat = global_flat + result.aggregate
            g = result.gram if result.gram is not None else gram(batch)
            gram_hex = gram_digest(g)
            sketch_rows = sketches(batch, seed_hash, sketch_dim).tolist()
            sketch = None
            if circuit is not None:
                sketch = proof_scores(sketch_rows, result.coefficients, result.flags)
            details = score_details(result.coefficients, result.flags, g, sketch)
            points = to_points([d.score for d in details])
            rewards = split_rewards(chain_round.budget, points)
            for i, (trainer, cid) in enumerate(accepted):
                flag = result.flags[i]
                entries[trainer] = SubmissionEntry(
                    trainer,
                    cid,
                    "accepted" if flag is None else "flagged",
                    flag,
                    float(result.coefficients[i]),
                    points[i],
                    rewards[i],
                    alignment=details[i].alignment,
                    free_rider=details[i].free_rider,
                    sketch=sketch_rows[i],
                )

        new_model = encode_model(layout.unflatten(new_flat.astype(np.float32)))
        submissions = [entries[t] for t in sorted(entries)]
        leaves = [(s.trainer, s.reward_wei) for s in submissions if s.reward_wei > 0]
        root = MerkleTree.of_rewards(leaves).root if leaves else ZERO32
        report = RoundReport(
            chain_id=self.market.w3.eth.chain_id,
            contract=self.market.address,
            project_id=project_id,
            round=round_number,
            rule=rule.name,
            rule_params=rule.params,
            global_model=global_cid,
            new_model=cid_of(new_model),
            budget_wei=chain_round.budget,
            total_wei=sum(amount for _, amount in leaves),
            rewards_root="0x" + root.hex(),
            submissions=submissions,
            evidence=evidence,
            batch_order=order,
            score_scale=SCORE_SCALE,
            scoring={
                "alignment_floor": ALIGNMENT_FLOOR,
                "norm_floor": NORM_FLOOR,
                "sketch_gate": circuit is not None,
            },
            sketch_scheme=SKETCH_SCHEME,
            sketch_dim=sketch_dim,
            sketch_seed_block=seed_number,
            sketch_seed="0x" + seed_hash.hex(),
            sketch_commitment=sketch_commitment(sketch_rows),
            gram_digest=gram_hex,
        )
        if circuit is not None:
            proof = prove(statement_of(report), circuit)
            self._proofs[(project_id, round_number)] = proof
            report = replace(
                report,
                zk={
                    "circuit": circuit.name,
                    "sketch_commit": hex(proof.sketch_commit),
                    "score_commit": hex(proof.score_commit),
                    "fixed_bits": FIXED_BITS,
                },
            )
        return report, new_model, new_state

    def circuit(self, project_id: int) -> Circuit | None:
        """The score-split circuit the project's verifier checks, or None (no proof)."""
        verifier = self.market.proof_verifier(project_id)
        if int(verifier, 16) == 0:
            return None
        return circuit_of_verifier(self.market.w3, verifier)

    def finalize_round(self, project_id: int, round_number: int) -> RoundOutcome:
        """Compute, publish and finalize; a round finalized already is reconciled instead."""
        chain_round = self.market.get_round(project_id, round_number)
        if chain_round.state == RoundState.FINALIZED:
            return self._reconcile(project_id, round_number)
        if chain_round.state != RoundState.OPEN:
            raise AggregationError(
                f"round {round_number} of project {project_id} is {chain_round.state.name}, "
                "not open: nothing to finalize"
            )
        report, new_model, new_state = self.compute_round(project_id, round_number)
        model_cid = self.store.put(new_model)
        report_bytes = report.to_bytes()
        report_cid = self.store.put(report_bytes)
        for cid in (model_cid, report_cid):
            self.store.pin(cid)
        self._record(project_id, round_number, report, report_cid, new_state)
        args = (
            self.account,
            project_id,
            round_number,
            digest_of_cid(model_cid),
            digest_of_cid(report_cid),
            bytes.fromhex(report.rewards_root[2:]),
            report.total_wei,
        )
        if report.zk:
            proof = self._proofs.pop((project_id, round_number))
            commits = (proof.sketch_commit, proof.score_commit)
            tx = self.market.finalize_round_with_proof(*args, commits, proof.proof)
        else:
            tx = self.market.finalize_round(*args)
        with self.db.session() as s:
            record = s.scalar(self._record_query(project_id, round_number))
            record.status, record.finalize_tx = "finalized", tx.tx_hash
        return RoundOutcome(project_id, round_number, model_cid, report_cid, report, tx)

    # -- helpers -----------------------------------------------------------------------

    def _fetch_valid(self, digest: bytes, layout: ModelLayout, spec: ProjectSpec):  # noqa: ANN202
        return fetch_valid(self.store, digest, layout, spec)

    def _record_query(self, project_id: int, round_number: int):  # noqa: ANN202
        return select(RoundRecord).where(
            RoundRecord.contract == self.market.address,
            RoundRecord.project_id == project_id,
            RoundRecord.round == round_number,
        )

    def _record(
        self,
        project_id: int,
        round_number: int,
        report: RoundReport,
        report_cid: str,
        new_state: dict | None,
    ) -> None:
        """Write the outcome, and the rule's history after this round, before finalizing."""
        with self.db.session() as s:
            if new_state is not None:
                self._save_state(s, project_id, round_number, report.rule, new_state)
            record = s.scalar(self._record_query(project_id, round_number))
            if record is None:
                record = RoundRecord(
                    contract=self.market.address, project_id=project_id, round=round_number
                )
                s.add(record)
            record.model_cid, record.report_cid = report.new_model, report_cid
            record.rewards_root, record.total_wei = report.rewards_root, str(report.total_wei)
            record.status = "computed"

    def _reconcile(self, project_id: int, round_number: int) -> RoundOutcome:
        chain_round = self.market.get_round(project_id, round_number)
        report_cid, data = get_by_digest(self.store, chain_round.report_digest)
        report = RoundReport.from_bytes(data)
        with self.db.session() as s:
            record = s.scalar(self._record_query(project_id, round_number))
            if record is not None:
                record.status = "finalized"
        return RoundOutcome(project_id, round_number, report.new_model, report_cid, report, None)

    def _history(self, session: Session, project_id: int, rule: str) -> TrainerHistory | None:
        return session.scalar(
            select(TrainerHistory).where(
                TrainerHistory.contract == self.market.address,
                TrainerHistory.project_id == project_id,
                TrainerHistory.rule == rule,
            )
        )

    def _load_state(self, project_id: int, round_number: int, rule: Rule) -> dict | None:
        """The rule's history before ``round_number``: from the database, or rebuilt from
        the earlier finalized rounds when the database has none (a new or lost one) — then
        stored as the history after the last of them, so it is rebuilt only once."""
        if not rule.stateful:
            return None
        with self.db.session() as s:
            row = self._history(s, project_id, rule.name)
            if row is not None:
                return self._state_before(project_id, json.loads(row.state_json), round_number)
        state, replayed = replayed_state(self.market, self.store, project_id, round_number, rule)
        if replayed:
            with self.db.session() as s:
                self._save_state(s, project_id, replayed[-1], rule.name, state)
        return state

    def _state_before(self, project_id: int, saved: dict, round_number: int) -> dict | None:
        """The history a round starts from, given the row saved for the last round computed.

        The row keeps the state before and after that round, so recomputing it after a
        crash (before or after its transaction) starts from the same state. A round computed
        but never finalized (it expired) did not count: later rounds start from its
        "before" — `market verify` rebuilds the history from finalized rounds only."""
        last = saved["round"]
        if last >= round_number:
            return saved["before"]
        if self.market.get_round(project_id, last).state != RoundState.FINALIZED:
            return saved["before"]
        return saved["after"]

    def _save_state(
        self, session: Session, project_id: int, round_number: int, rule: str, state: dict
    ) -> None:
        row = self._history(session, project_id, rule)
        if row is None:
            row = TrainerHistory(
                contract=self.market.address, project_id=project_id, rule=rule, state_json=""
            )
            session.add(row)
            before = None
        else:
            before = self._state_before(project_id, json.loads(row.state_json), round_number)
        row.state_json = json.dumps(
            {"round": round_number, "before": before, "after": state}, sort_keys=True
        )
