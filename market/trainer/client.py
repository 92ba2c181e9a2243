"""The trainer's side of a round: train, commit, publish and reveal, claim.

Commit–reveal keeps an honest update private while others can still submit: the update
bytes and a random salt are kept in the trainer's own database, only the commitment goes
on chain, and nothing is published to the (possibly shared) store before the commit
window has closed. The salt is written down *before* ``commitUpdate`` is sent, so a
crashed trainer can always reveal what it committed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from market.aggregator.report import RoundReport
from market.aggregator.service import layout_of, load_spec
from market.chain import LearningMarket, RoundState, TxResult, chain_time, increase_time
from market.db import Claim, Database, Submission
from market.errors import ProofError, TrainingError
from market.proofs import MerkleTree
from market.spec import ProjectSpec
from market.storage import Store, decode_model, encode_update
from market.storage.cid import cid_of, digest_of_cid
from market.storage.resolve import get_by_digest
from market.trainer.data import Dataset
from market.trainer.local import train_update
from market.trainer.model import ModelSpec, build_model

DEV_CHAIN_ID = 31337


@dataclass(frozen=True)
class ClaimResult:
    round: int
    amount_wei: int
    tx: TxResult | None


class TrainerClient:
    """One trainer account taking part in rounds of projects on one market contract."""

    def __init__(
        self, market: LearningMarket, store: Store, account: LocalAccount, db: Database
    ) -> None:
        self.market = market
        self.store = store
        self.account = account
        self.db = db

    @property
    def address(self) -> str:
        return self.account.address

    def spec(self, project_id: int) -> ProjectSpec:
        return load_spec(self.market, self.store, project_id)

    def open_round(self, project_id: int) -> int:
        """The project's round accepting commitments now, or TrainingError saying why not."""
        project = self.market.get_project(project_id)
        number = project.rounds_opened
        if number == 0:
            raise TrainingError(
                f"project {project_id} has no open round yet; wait for the aggregator"
            )
        current = self.market.get_round(project_id, number)
        if current.state != RoundState.OPEN or chain_time(self.market.w3) > current.commit_deadline:
            raise TrainingError(
                f"round {number} of project {project_id} no longer accepts commitments; "
                "wait for the next round"
            )
        return number

    # -- 1. train and commit -------------------------------------------------------------

    def prepare(
        self,
        project_id: int,
        round_number: int,
        data: Dataset,
        *,
        seed: int = 0,
        transform: Callable[[dict], dict] | None = None,
    ) -> Submission:
        """Train on local data from the round's global model; keep the update private.

        ``transform`` lets benchmarks and tests play a misbehaving trainer (e.g. sign flip).
        """
        existing = self._submission(project_id, round_number)
        if existing is not None:
            return existing
        spec = self.spec(project_id)
        layout = layout_of(spec)
        chain_round = self.market.get_round(project_id, round_number)
        _, model_bytes = get_by_digest(self.store, chain_round.global_model)
        global_weights = decode_model(model_bytes, layout)
        model = build_model(ModelSpec.from_dict(spec.model))
        delta = train_update(model, global_weights, data, seed=seed, **spec.training)
        if transform is not None:
            delta = transform(delta)
        update = encode_update(delta, layout, seed=seed)
        submission = Submission(
            contract=self.market.address,
            project_id=project_id,
            round=round_number,
            trainer=self.address,
            update=update,
            update_cid=cid_of(update),
            salt="0x" + secrets.token_bytes(32).hex(),
            num_samples=len(data),
        )
        with self.db.session() as s:
            s.add(submission)
        return submission

    def commit(
        self,
        project_id: int,
        round_number: int,
        admission_proof: list[bytes] | None = None,
        admission_cid: str | None = None,
    ) -> TxResult | None:
        """Send the commitment; None if the chain already has it (a resumed trainer).

        Without ``admission_proof``, a round opened with an admission root gets the proof
        from the round's admission document (``admission_cid``, or the CID indexed in this
        trainer's database), checked against the on-chain root first.
        """
        sub = self._required(project_id, round_number)
        on_chain = self.market.get_submission(project_id, round_number, self.address)
        if on_chain.committed:
            self._set(sub, status="committed")
            return None
        if admission_proof is None:
            admission_proof = self.admission_proof(project_id, round_number, admission_cid)
        commitment = self.market.compute_commitment(
            digest_of_cid(sub.update_cid), self.address, bytes.fromhex(sub.salt[2:])
        )
        tx = self.market.commit_update(
            self.account, project_id, round_number, commitment, admission_proof
        )
        self._set(sub, status="committed", commit_tx=tx.tx_hash)
        return tx

    def admission_proof(
        self, project_id: int, round_number: int, admission_cid: str | None = None
    ) -> list[bytes]:
        """This trainer's admission proof for the round ([] when admission is open)."""
        from market.reputation.rounds import admission_proof

        return admission_proof(
            self.store,
            self.market,
            self.address,
            project_id,
            round_number,
            cid=admission_cid,
            db=self.db,
        )

    # -- 2. publish and reveal -----------------------------------------------------------

    def wait_for_reveal_window(
        self, project_id: int, round_number: int, poll: float = 1.0, timeout: float = 3600
    ) -> None:
        """Block until the commit window has closed (on the dev chain, mining as time passes)."""
        deadline = self.market.get_round(project_id, round_number).commit_deadline
        w3 = self.market.w3
        started = time.monotonic()
        while chain_time(w3) <= deadline:
            if time.monotonic() - started > timeout:
                raise TrainingError(f"commit window of round {round_number} did not close in time")
            if w3.eth.chain_id == DEV_CHAIN_ID and time.time() > deadline:
                increase_time(w3, 0)  # anvil mines on demand: mine one block to move time on
            time.sleep(poll)

    def reveal(self, project_id: int, round_number: int) -> TxResult | None:
        """Publish the update bytes, then reveal; None if it was revealed already."""
        sub = self._required(project_id, round_number)
        chain_round = self.market.get_round(project_id, round_number)
        if chain_time(self.market.w3) <= chain_round.commit_deadline:
            raise TrainingError(
                "the commit window is still open: publishing now would let others copy the update"
            )
        cid = self.store.put(sub.update)
        if cid != sub.update_cid:
            raise TrainingError(f"store returned CID {cid}, expected {sub.update_cid}")
        self.store.pin(cid)
        if self.market.get_submission(project_id, round_number, self.address).revealed:
            self._set(sub, status="revealed")
            return None
        tx = self.market.reveal_update(
            self.account, project_id, round_number, digest_of_cid(cid), bytes.fromhex(sub.salt[2:])
        )
        self._set(sub, status="revealed", reveal_tx=tx.tx_hash)
        return tx

    # -- 3. claim --------------------------------------------------------------------------

    def reward(self, project_id: int, round_number: int) -> tuple[int, list[bytes]]:
        """This trainer's reward and Merkle proof, rebuilt from the report and checked on chain."""
        chain_round = self.market.get_round(project_id, round_number)
        if chain_round.state != RoundState.FINALIZED:
            raise TrainingError(f"round {round_number} is {chain_round.state.name}, not finalized")
        _, data = get_by_digest(self.store, chain_round.report_digest)
        report = RoundReport.from_bytes(data)
        leaves = report.rewards()
        amounts = {account.lower(): amount for account, amount in leaves}
        amount = amounts.get(self.address.lower(), 0)
        if amount == 0:
            return 0, []
        tree = MerkleTree.of_rewards(leaves)
        if tree.root != chain_round.rewards_root:
            raise ProofError(
                "the report's reward table does not match the rewards root on chain; "
                "run `market verify` and do not trust this round's report"
            )
        return amount, tree.proof_for((self.address, amount))

    def claim(self, project_id: int, round_number: int) -> ClaimResult:
        amount, proof = self.reward(project_id, round_number)
        if amount == 0 or self.market.is_claimed(project_id, round_number, self.address):
            return ClaimResult(round_number, 0, None)
        tx = self.market.claim(self.account, project_id, round_number, amount, proof)
        self._record_claims(project_id, [(round_number, amount)], tx)
        return ClaimResult(round_number, amount, tx)

    def claim_rounds(self, project_id: int, round_numbers: list[int]) -> list[ClaimResult]:
        """Claim several finalized rounds: all those with an unclaimed reward in one
        ``claimMany`` transaction (cheaper per round than one ``claim`` each)."""
        owed = []
        for number in round_numbers:
            amount, proof = self.reward(project_id, number)
            if amount > 0 and not self.market.is_claimed(project_id, number, self.address):
                owed.append((number, amount, proof))
        if len(owed) == 1:
            paid = {owed[0][0]: self.claim(project_id, owed[0][0])}
        elif owed:
            tx = self.market.claim_many(self.account, project_id, owed)
            self._record_claims(project_id, [(n, amount) for n, amount, _ in owed], tx)
            paid = {n: ClaimResult(n, amount, tx) for n, amount, _ in owed}
        else:
            paid = {}
        return [paid.get(n, ClaimResult(n, 0, None)) for n in round_numbers]

    # -- bookkeeping -----------------------------------------------------------------------

    def _submission(self, project_id: int, round_number: int) -> Submission | None:
        with self.db.session() as s:
            return s.scalar(
                select(Submission).where(
                    Submission.contract == self.market.address,
                    Submission.project_id == project_id,
                    Submission.round == round_number,
                    Submission.trainer == self.address,
                )
            )

    def _required(self, project_id: int, round_number: int) -> Submission:
        sub = self._submission(project_id, round_number)
        if sub is None:
            raise TrainingError(
                f"no prepared update for round {round_number} of project {project_id}; "
                "run `market trainer join` first"
            )
        return sub

    def _record_claims(self, project_id: int, amounts: list[tuple[int, int]], tx: TxResult) -> None:
        with self.db.session() as s:
            for number, amount in amounts:
                s.add(
                    Claim(
                        contract=self.market.address,
                        project_id=project_id,
                        round=number,
                        account=self.address,
                        amount_wei=str(amount),
                        tx=tx.tx_hash,
                    )
                )

    def _set(self, sub: Submission, **fields: str) -> None:
        with self.db.session() as s:
            row = s.get(Submission, sub.id)
            for key, value in fields.items():
                setattr(row, key, value)
