"""``market aggregator run``: an aggregator that stays up and serves every project naming it.

Event-driven: ``ProjectCreated`` naming this account (and in the configured list) adds a
project; ``UpdateRevealed`` fetches and checks the update at once, so a missing or broken
upload is known before the window ends. Each pass then schedules from the chain's state:
open the next round (after ``round_interval``), finalize a round whose reveal window has
closed. ``Aggregator.finalize_round`` records the outcome before sending and reconciles a
round already finalized; :class:`TxGuard` adds intent-before-send, so a process killed at
any point restarts without a second ``openRound`` or ``finalizeRound``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from market.aggregator.service import Aggregator, load_spec
from market.chain import RoundState, TxResult, chain_time
from market.config import AggregatorConfig, listen_address
from market.db import ProjectChoice
from market.db.intents import crashpoint
from market.errors import MarketError
from market.reputation.admission import policy_from_spec
from market.runtime import Service, ServiceLog
from market.spec import ProjectSpec
from market.storage.resolve import get_by_digest

if TYPE_CHECKING:
    from market.serving import ServerThread


class _CrashingStore:
    """Test hook: the store, dying on its n-th read (``aggregator.aggregating``)."""

    def __init__(self, store, after: int) -> None:  # noqa: ANN001
        self._store, self._left = store, after

    def get(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self._left -= 1
        if self._left < 0:
            crashpoint("aggregator.aggregating")
        return self._store.get(*args, **kwargs)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._store, name)


class AggregatorRunner(Service):
    """One aggregator account following one market."""

    role = "aggregator"

    def __init__(self, config: AggregatorConfig, log: ServiceLog | None = None) -> None:
        super().__init__(config, log)
        self.config: AggregatorConfig = config
        self.aggregator = Aggregator(self.market, self.store, self.account, self.db)
        self._last_finalized: dict[int, float] = {}
        self._prefetched: set[bytes] = set()
        self._specs: dict[int, ProjectSpec] = {}
        self._window_start: dict[tuple[int, int], int] = {}

    def run(self, *, until_idle: bool = False, max_passes: int | None = None) -> int:
        """The service loop, with the HTTP API (``api_listen``) up for as long as it runs."""
        server = self._start_api()
        try:
            return super().run(until_idle=until_idle, max_passes=max_passes)
        finally:
            if server is not None:
                server.stop()

    def _start_api(self) -> ServerThread | None:
        if self.config.api_listen is None:
            return None
        from market.aggregator.api import create_api  # FastAPI: only when asked
        from market.serving import ServerThread

        host, port = listen_address(self.config.api_listen)
        app = create_api(
            self.market, self.store, self.db, self.account.address, self.config.projects
        )
        server = ServerThread(app, host, port, "aggregator API", "api_listen").start()
        self.log.event("api", url=f"http://{self.config.api_listen}")
        if not self.config.application_window:
            self.log.warn(
                "application_window is 0: a gated project's first round opens as soon as it is "
                "seen, before trainers can apply through the API"
            )
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.log.warn(
                f"the aggregator API listens on {host}, beyond this machine: applications are "
                "signed, but put a proxy with rate limits in front of it"
            )
        return server

    # -- one pass ----------------------------------------------------------------------

    def step(self) -> int:
        for ev in self.follower.poll():
            self._handle(ev)
        self.follower.save()
        actions = 0
        for project_id in self.accepted_projects():
            try:
                actions += self._schedule(project_id)
            except MarketError as exc:
                self.log.warn(f"project {project_id}: {exc}")
        return actions

    def _handle(self, ev: dict) -> None:
        args = ev["args"]
        if ev["event"] == "ProjectCreated" and args["aggregator"] == self.account.address:
            self._serve(args["project_id"])
        elif (
            ev["event"] == "UpdateRevealed"
            and self.config.prefetch
            and args["project_id"] in self.accepted_projects()
        ):
            self._prefetch(args["project_id"], args["round"], args["update_digest"])

    def _serve(self, project_id: int) -> None:
        wanted = self.config.projects is None or project_id in self.config.projects
        with self.db.session() as s:
            if s.scalar(self._choice_query(project_id)) is not None:
                return
            s.add(
                ProjectChoice(
                    contract=self.market.address,
                    service=self.service_name,
                    project_id=project_id,
                    accepted=wanted,
                    reason="names this aggregator" if wanted else "not in the project list",
                )
            )
        self.log.event("project", project=project_id, served=wanted)

    def _spec(self, project_id: int) -> ProjectSpec:
        if project_id not in self._specs:  # a project's spec never changes
            self._specs[project_id] = load_spec(self.market, self.store, project_id)
        return self._specs[project_id]

    def _prefetch(self, project_id: int, number: int, digest: bytes) -> None:
        """Fetch a revealed update as soon as it is announced: the store keeps it, and a
        missing or oversized upload shows in the log while trainers can still fix it."""
        if digest in self._prefetched:
            return
        try:
            spec = self._spec(project_id)
            cid, data = get_by_digest(self.store, digest, max_size=spec.max_update_bytes)
            self._prefetched.add(digest)
            self.log.event(
                "update", project=project_id, round=number, cid=cid, bytes=len(data), ok=True
            )
        except MarketError as exc:
            self.log.event("update", project=project_id, round=number, ok=False, error=str(exc))

    # -- scheduling --------------------------------------------------------------------

    def _schedule(self, project_id: int) -> int:
        project = self.market.get_project(project_id)
        number = project.rounds_opened
        now = chain_time(self.w3)
        if number > 0:
            r = self.market.get_round(project_id, number)
            if r.state == RoundState.OPEN:
                if now <= r.reveal_deadline:
                    self.nudge_dev_clock(r.reveal_deadline)
                    return 0
                if now > r.finalize_deadline:
                    self.log.warn(
                        f"round {number} of project {project_id} passed its finalize deadline "
                        "unfinalized: anyone may expire it (trainers get equal shares)"
                    )
                    return 0
                return self._finalize(project_id, number)
        if not self.config.open_rounds or project.cancelled or number >= project.rounds:
            return 0
        since = time.monotonic() - self._last_finalized.get(project_id, float("-inf"))
        if since < self.config.round_interval:
            return 0
        if self.config.application_window and policy_from_spec(self._spec(project_id).admission):
            closes = self._applications_opened(project_id, number) + int(
                self.config.application_window
            )
            if now < closes:  # trainers are still applying to the gated round
                self.nudge_dev_clock(closes)
                return 0
        return self._open(project_id, number + 1)

    def _applications_opened(self, project_id: int, opened: int) -> int:
        """Chain time since when round ``opened + 1`` takes applications: the project's
        creation, or the opening of round ``opened`` (trainers apply for the next round then)."""
        key = (project_id, opened)
        if key not in self._window_start:
            start = self.config.start_block
            events = (
                self.market.events("RoundOpened", start, project_id=project_id, round=opened)
                if opened
                else self.market.events("ProjectCreated", start, project_id=project_id)
            )
            # an event before start_block is long past: the window is over
            self._window_start[key] = (
                int(self.w3.eth.get_block(events[0]["block_number"])["timestamp"]) if events else 0
            )
        return self._window_start[key]

    def _open(self, project_id: int, number: int) -> int:
        result = self.guard.run(
            "open",
            project_id,
            number,
            lambda: self.market.get_project(project_id).rounds_opened >= number,
            lambda: self._open_with_admission(project_id),
        )
        if result is not None:
            opened, tx = result
            r = self.market.get_round(project_id, opened)
            self.log.event(
                "opened",
                project=project_id,
                round=opened,
                tx=tx.tx_hash,
                commit_deadline=r.commit_deadline,
                reveal_deadline=r.reveal_deadline,
            )
        return 1

    def _open_with_admission(self, project_id: int) -> tuple[int, TxResult]:
        """Open with the admission root the project's policy gives (zero when admission is
        open); the admitted list is published to the store first."""
        from market.reputation import commands

        opened, tx, admission = commands.open_round(
            self.aggregator, self.market, self.store, self.db, project_id
        )
        if not admission.get("open"):
            self.log.event(
                "admission",
                project=project_id,
                round=opened,
                root=admission.get("root"),
                cid=admission.get("cid"),
                admitted=len(admission.get("admitted") or []),
            )
        return opened, tx

    def _finalize(self, project_id: int, number: int) -> int:
        crashpoint("aggregator.before_finalize")
        if _crash_target() == "aggregator.aggregating":
            self.aggregator.store = _CrashingStore(self.store, after=2)
        started = time.perf_counter()
        with self.log.activity(f"aggregating round {number} of project {project_id}"):
            outcome = self.guard.run(
                "finalize",
                project_id,
                number,
                lambda: self.market.get_round(project_id, number).state != RoundState.OPEN,
                lambda: self.aggregator.finalize_round(project_id, number),
            )
        self.aggregator.store = self.store
        self._last_finalized[project_id] = time.monotonic()
        if outcome is None:
            outcome = self.aggregator.finalize_round(project_id, number)  # reconcile the record
        accepted = sum(s.status == "accepted" for s in outcome.report.submissions)
        self.log.event(
            "finalized",
            project=project_id,
            round=number,
            model=outcome.model_cid,
            submissions=len(outcome.report.submissions),
            accepted=accepted,
            total_wei=outcome.report.total_wei,
            tx=outcome.finalize_tx.tx_hash if outcome.finalize_tx else None,
            seconds=round(time.perf_counter() - started, 3),
        )
        crashpoint("aggregator.finalized")
        return 1


def _crash_target() -> str | None:
    import os

    from market.db.intents import CRASH_ENV

    return os.environ.get(CRASH_ENV)
