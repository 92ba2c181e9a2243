"""``market trainer run``: a trainer that stays up, joins matching projects and gets paid.

Event-driven: ``ProjectCreated`` decides whether to join (model kind, data schema, minimum
reward, project list), ``RoundOpened`` trains and commits while the window is open. Each pass
then moves every unfinished submission on from what the chain says now: reveal after the
commit window, claim once finalized (or expire an abandoned round and claim the equal
share). For projects with admission it applies to the next round (through the aggregator's
API when ``aggregator_api`` is set, else into its own database, which the aggregator must
share) and takes part in a round only once the admitted list, checked against the chain's
root, holds it; an unreachable API is asked again on the next pass. Every transaction goes
through :class:`TxGuard` (intent first, chain checked first), and the event cursor is saved
only after the events are handled, so a process killed anywhere restarts without sending
anything twice or losing a reward.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
from sqlalchemy import select

from market.chain import ZERO32, RoundState, chain_time
from market.config import TrainerConfig
from market.db import Claim, ProjectChoice, Submission
from market.db.intents import crashpoint
from market.errors import MarketError, TrainingError
from market.reputation.admission import policy_from_spec
from market.reputation.commands import apply
from market.reputation.remote import AggregatorApi, ApiRefused, ApiUnavailable, fetch_admission
from market.reputation.rounds import admission_proof, stored_application
from market.runtime import Service, ServiceLog
from market.spec import ProjectSpec
from market.trainer.client import TrainerClient
from market.trainer.data import (
    Dataset,
    dirichlet_split,
    load_dataset,
    train_test_split,
)
from market.trainer.local import reporting_progress

ACTIVE = ("prepared", "committed", "revealed")


def load_training_data(config: TrainerConfig, spec: ProjectSpec | None = None) -> Dataset:
    """The trainer's local data: a loader entry point, digits, a file or a directory."""
    if config.loader:
        module, _, name = config.loader.partition(":")
        try:
            loader = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise TrainingError(
                f"cannot import loader {config.loader!r}: {exc} (use 'package.module:function')"
            ) from None
        data = loader(spec)
        if not isinstance(data, Dataset):
            raise TrainingError(f"loader {config.loader!r} returned {type(data).__name__}")
        return data
    if config.data == "digits":
        train, _ = train_test_split(load_dataset("digits"), test_fraction=0.2, seed=0)
        parts = dirichlet_split(train.y, config.digits_parts, config.digits_alpha, seed=0)
        return train.subset(parts[config.digits_part])
    path = Path(config.data)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".npz", ".csv"))
        if not files:
            raise TrainingError(f"data directory {path} holds no .npz or .csv file")
        sets = [load_dataset(str(p)) for p in files]
        return Dataset(np.concatenate([d.x for d in sets]), np.concatenate([d.y for d in sets]))
    return load_dataset(str(path))


class TrainerService(Service):
    """One trainer account following one market."""

    role = "trainer"

    def __init__(self, config: TrainerConfig, log: ServiceLog | None = None) -> None:
        super().__init__(config, log)
        self.config: TrainerConfig = config
        self.client = TrainerClient(self.market, self.store, self.account, self.db)
        self.api = AggregatorApi(config.aggregator_api) if config.aggregator_api else None
        self._data: Dataset | None = None
        self._gated: dict[int, bool] = {}
        self._not_admitted: set[tuple[int, int]] = set()
        self._refused: set[tuple[int, int]] = set()  # applications the aggregator turned down
        self._warned: dict[tuple[str, int, int], str] = {}

    # -- one pass ----------------------------------------------------------------------

    def step(self) -> int:
        actions = 0
        for ev in self.follower.poll():
            actions += self._handle(ev)
        self.follower.save()
        return actions + self._advance() + self._gated_rounds()

    def _handle(self, ev: dict) -> int:
        args = ev["args"]
        if ev["event"] == "ProjectCreated":
            self._choose(args["project_id"])
        elif ev["event"] == "RoundOpened" and self._accepted(args["project_id"]):
            return self._participate(args["project_id"], args["round"])
        return 0

    # -- choosing projects -------------------------------------------------------------

    def _choose(self, project_id: int) -> bool:
        with self.db.session() as s:
            row = s.scalar(self._choice_query(project_id))
            if row is not None:
                return row.accepted
        accepted, reason = self._evaluate(project_id)
        if reason.startswith("spec unavailable"):
            self.log.warn(f"project {project_id}: {reason}; will look again")
            return False  # maybe a store hiccup: decide on the next event, do not record
        with self.db.session() as s:
            if s.scalar(self._choice_query(project_id)) is None:
                s.add(
                    ProjectChoice(
                        contract=self.market.address,
                        service=self.service_name,
                        project_id=project_id,
                        accepted=accepted,
                        reason=reason,
                    )
                )
        self.log.event("project", project=project_id, joined=accepted, reason=reason)
        return accepted

    def _evaluate(self, project_id: int) -> tuple[bool, str]:
        cfg = self.config
        if cfg.projects is not None and project_id not in cfg.projects:
            return False, "not in the configured project list"
        project = self.market.get_project(project_id)
        if project.reward_per_round < cfg.min_reward_wei:
            return False, f"reward per round {project.reward_per_round} wei below minimum"
        try:
            spec = self.client.spec(project_id)
        except MarketError as exc:
            return False, f"spec unavailable: {exc}"
        kind = spec.model.get("kind", "mlp")
        if kind not in cfg.model_kinds:
            return False, f"model kind {kind!r} not in {cfg.model_kinds}"
        if cfg.data_schemas is not None and spec.data_schema not in cfg.data_schemas:
            return False, f"data schema {spec.data_schema!r} not in {cfg.data_schemas}"
        return True, "matches"

    def _accepted(self, project_id: int) -> bool:
        return self._choose(project_id)

    # -- gated projects: apply, then find the admitted list ----------------------------

    def _is_gated(self, project_id: int) -> bool:
        if project_id not in self._gated:  # a project's spec never changes
            admission = self.client.spec(project_id).admission
            self._gated[project_id] = policy_from_spec(admission) is not None
        return self._gated[project_id]

    def _gated_rounds(self) -> int:
        """For every joined project with admission: apply to its next round, and take part in
        its current round if that was put off (API down, document not published yet)."""
        actions = 0
        for pid in self.accepted_projects():
            try:
                if not self._is_gated(pid):
                    continue
                project = self.market.get_project(pid)
                number = project.rounds_opened
                if not project.cancelled and number < project.rounds:
                    actions += self._apply(pid, number + 1)
                if (
                    number
                    and (pid, number) not in self._not_admitted
                    and self.client._submission(pid, number) is None
                ):
                    actions += self._participate(pid, number)
            except MarketError as exc:
                self.log.warn(f"project {pid}: {exc}")
        return actions

    def _apply(self, project_id: int, number: int) -> int:
        """Sign and deliver an application (to the aggregator API, else into this database,
        which the aggregator must then share), once; an unreachable API is retried."""
        key = (project_id, number)
        if key in self._refused:
            return 0
        row = stored_application(self.db, self.market, project_id, number, self.account.address)
        if row is not None and (self.api is None or row.delivered_to == self.api.url):
            return 0
        try:
            apply(self.market, self.db, self.account, project_id, number, self.api)
        except ApiUnavailable as exc:
            self._warn_once("apply", project_id, number, f"{exc}; will retry")
            return 0
        except ApiRefused as exc:
            self._refused.add(key)
            self.log.event("application_refused", project=project_id, round=number, reason=str(exc))
            return 0
        self.log.event(
            "applied",
            project=project_id,
            round=number,
            to=self.api.url if self.api else "database",
        )
        return 1

    def _warn_once(self, what: str, project_id: int, number: int, message: str) -> None:
        """A warning per change, not per pass: a service polling a down API repeats itself."""
        key = (what, project_id, number)
        if self._warned.get(key) != message:
            self._warned[key] = message
            self.log.warn(f"project {project_id} round {number}: {message}")

    # -- a round -----------------------------------------------------------------------

    def _participate(self, project_id: int, number: int) -> int:
        chain_round = self.market.get_round(project_id, number)
        if (
            chain_round.state != RoundState.OPEN
            or chain_time(self.w3) > chain_round.commit_deadline
        ):
            return 0  # history being replayed, or too late for this round
        if chain_round.admission_root != ZERO32 and not self._admitted(project_id, number):
            return 0
        if self.client._submission(project_id, number) is None:
            data = self._dataset(project_id)
            with (
                self.log.progress(
                    f"project {project_id} round {number}", project=project_id, round=number
                ) as report,
                reporting_progress(report),
            ):
                sub = self.client.prepare(project_id, number, data, seed=self.config.seed)
            self.log.event(
                "trained", project=project_id, round=number, samples=len(data), cid=sub.update_cid
            )
            crashpoint("trainer.prepared")
        return self._commit(project_id, number)

    def _admitted(self, project_id: int, number: int) -> bool | None:
        """Whether the round's published admission list holds this trainer (checked against
        the on-chain root); a refused trainer does not train for nothing. None: the list
        cannot be had from the aggregator API yet — asked again on the next pass."""
        if (project_id, number) in self._not_admitted:
            return False
        if self.api is not None:
            try:
                fetch_admission(self.api, self.market, self.store, self.db, project_id, number)
            except MarketError as exc:  # down, not published yet, or contradicted by the chain
                self._warn_once("admission", project_id, number, f"{exc}; will retry")
                return None
        try:
            admission_proof(
                self.store, self.market, self.account.address, project_id, number, db=self.db
            )
        except MarketError as exc:
            self._not_admitted.add((project_id, number))
            self.log.event("not_admitted", project=project_id, round=number, reason=str(exc))
            return False
        return True

    def _commit(self, project_id: int, number: int) -> int:
        tx = self.guard.run(
            "commit",
            project_id,
            number,
            lambda: self.market.get_submission(project_id, number, self.account.address).committed,
            lambda: self.client.commit(project_id, number),
        )
        if tx is None:
            self.client._set(self.client._required(project_id, number), status="committed")
            return 0
        self.log.event("committed", project=project_id, round=number, tx=tx.tx_hash)
        crashpoint("trainer.committed")
        return 1

    def _advance(self) -> int:
        """Move every unfinished submission on, from the chain's state now."""
        with self.db.session() as s:
            subs = list(
                s.scalars(
                    select(Submission).where(
                        Submission.contract == self.market.address,
                        Submission.trainer == self.account.address,
                        Submission.status.in_(ACTIVE),
                    )
                )
            )
        actions = 0
        for sub in subs:
            try:
                actions += self._advance_one(sub)
            except MarketError as exc:
                self.log.warn(f"project {sub.project_id} round {sub.round}: {exc}")
        return actions

    def _advance_one(self, sub: Submission) -> int:
        pid, number = sub.project_id, sub.round
        r = self.market.get_round(pid, number)
        now = chain_time(self.w3)
        if sub.status == "prepared":
            if r.state == RoundState.OPEN and now <= r.commit_deadline:
                return self._commit(pid, number)
            if not self.market.get_submission(pid, number, self.account.address).committed:
                self.client._set(sub, status="missed")
                return 0
            self.client._set(sub, status="committed")
            return 1
        if sub.status == "committed":
            if now <= r.commit_deadline:
                self.nudge_dev_clock(r.commit_deadline)
                return 0
            if r.state != RoundState.OPEN or now > r.reveal_deadline:
                revealed = self.market.get_submission(pid, number, self.account.address).revealed
                self.client._set(sub, status="revealed" if revealed else "missed")
                return 0
            return self._reveal(sub)
        if sub.status == "revealed":
            return self._settle(sub, r, now)
        return 0

    def _reveal(self, sub: Submission) -> int:
        pid, number = sub.project_id, sub.round
        with self.log.activity(f"uploading the update of round {number}"):
            cid = self.store.put(sub.update)
            self.store.pin(cid)
        crashpoint("trainer.uploaded")
        tx = self.guard.run(
            "reveal",
            pid,
            number,
            lambda: self.market.get_submission(pid, number, self.account.address).revealed,
            lambda: self.client.reveal(pid, number),
        )
        self.client._set(sub, status="revealed")
        if tx is not None:
            self.log.event("revealed", project=pid, round=number, cid=cid, tx=tx.tx_hash)
            crashpoint("trainer.revealed")
        return 1

    def _settle(self, sub: Submission, r, now: int) -> int:  # noqa: ANN001
        pid, number, me = sub.project_id, sub.round, self.account.address
        if not self.config.auto_claim:
            return 0
        if r.state == RoundState.OPEN:
            if now <= r.finalize_deadline:
                return 0
            # the aggregator never finalized: expire the round so the equal share is claimable
            self.guard.run(
                "expire",
                pid,
                number,
                lambda: self.market.get_round(pid, number).state != RoundState.OPEN,
                lambda: self.market.expire_round(self.account, pid, number),
            )
            r = self.market.get_round(pid, number)
        done = lambda: self.market.is_claimed(pid, number, me)  # noqa: E731
        if r.state == RoundState.FINALIZED:
            amount, _ = self.client.reward(pid, number)
            if amount == 0:
                self.client._set(sub, status="settled")
                self.log.event("no_reward", project=pid, round=number)
                return 0
            result = self.guard.run(
                "claim", pid, number, done, lambda: self.client.claim(pid, number)
            )
            self.client._set(sub, status="claimed")
            if result is not None:
                self.log.event("claimed", project=pid, round=number, amount_wei=amount)
            else:
                self._record_claim(pid, number, amount)
            return 1
        if r.state == RoundState.EXPIRED:
            tx = self.guard.run(
                "claim",
                pid,
                number,
                done,
                lambda: self.market.claim_expired(self.account, pid, number),
            )
            self.client._set(sub, status="claimed")
            if tx is not None:
                self.log.event("claimed_expired", project=pid, round=number, tx=tx.tx_hash)
            return 1
        return 0

    def _record_claim(self, pid: int, number: int, amount: int) -> None:
        """A claim mined while the process was down: record it from the chain's event."""
        me = self.account.address
        with self.db.session() as s:
            known = s.scalar(
                select(Claim).where(
                    Claim.contract == self.market.address,
                    Claim.project_id == pid,
                    Claim.round == number,
                    Claim.account == me,
                )
            )
            if known is not None:
                return
            events = self.market.events("RewardClaimed", project_id=pid, round=number, account=me)
            tx = events[0]["tx_hash"] if events else ""
            s.add(
                Claim(
                    contract=self.market.address,
                    project_id=pid,
                    round=number,
                    account=me,
                    amount_wei=str(amount),
                    tx=tx,
                )
            )

    def _dataset(self, project_id: int) -> Dataset:
        if self._data is None:
            self._data = load_training_data(self.config, self.client.spec(project_id))
        return self._data
