"""What the two long-running services share: logs for people or machines, the connection
to chain, store and database, and the poll loop that ends on a signal or when idle."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import select

from market.config import DEV_CHAIN_ID, ServiceConfig, signing_account
from market.db import ProjectChoice
from market.db.follow import ChainChanged
from market.errors import ChainError, ConfigError

if TYPE_CHECKING:
    from market.trainer.local import TrainingProgress  # torch: not for the aggregator

PROGRESS_EVERY = 2.0  # seconds between training-progress log events (a bar redraws freely)


class ServiceLog:
    """One line per thing that happened: JSON on stdout (``json_logs``) or rich on stderr."""

    def __init__(
        self,
        json_logs: bool = False,
        console: Console | None = None,
        progress_every: float = PROGRESS_EVERY,
    ) -> None:
        self.json_logs = json_logs
        self.console = console or Console(stderr=True)
        self.progress_every = progress_every
        self.records: list[dict[str, Any]] = []  # kept for tests and summaries

    def event(self, what: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": what, **fields}
        self.records.append(record)
        if len(self.records) > 10_000:
            del self.records[:5_000]
        if self.json_logs:
            print(json.dumps(record, default=str), flush=True)
        else:
            details = " ".join(f"{k}={v}" for k, v in fields.items())
            self.console.print(f"[bold]{what}[/] {details}", highlight=False)

    def warn(self, message: str) -> None:
        self.event("warning", message=message)

    @contextmanager
    def activity(self, description: str) -> Iterator[None]:
        """A spinner while something long runs (training, uploading, aggregating)."""
        if self.json_logs or not self.console.is_terminal:
            yield
            return
        with self.console.status(description):
            yield

    @contextmanager
    def progress(
        self, description: str, **fields: Any
    ) -> Iterator[Callable[[TrainingProgress], None]]:
        """A reporter for local training: on a terminal a bar per epoch (batches done, loss,
        time left); otherwise ``progress`` events, at most one per ``progress_every`` seconds
        plus the last, so ``--json`` logs stay short and machine-readable."""
        if self.json_logs or not self.console.is_terminal:
            last = float("-inf")

            def record(p: TrainingProgress) -> None:
                nonlocal last
                finished = p.epoch == p.epochs and p.batch == p.batches
                now = time.monotonic()
                if finished or now - last >= self.progress_every:
                    last = now
                    self.event(
                        "progress",
                        **fields,
                        epoch=p.epoch,
                        epochs=p.epochs,
                        batch=p.batch,
                        batches=p.batches,
                        loss=round(p.loss, 5),
                    )

            yield record
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches · loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console) as bars:
            tasks: dict[int, TaskID] = {}

            def draw(p: TrainingProgress) -> None:
                if p.epoch not in tasks:
                    tasks[p.epoch] = bars.add_task(
                        f"{description} · epoch {p.epoch}/{p.epochs}", total=p.batches, loss=p.loss
                    )
                bars.update(tasks[p.epoch], completed=p.batch, loss=p.loss)

            yield draw


def resolve_contract(config: ServiceConfig, chain_id: int) -> str:
    if config.contract:
        return config.contract
    path = Path(config.data_dir) / "deployments" / f"{chain_id}.json"
    try:
        return json.loads(path.read_text())["LearningMarket"]
    except (OSError, ValueError, KeyError):
        raise ConfigError(
            f"no market contract: set contract in the config (or MARKET_CONTRACT), or deploy "
            f"one with `market dev deploy` (looked in {path})"
        ) from None


class Service:
    """Connections and the loop; subclasses implement :meth:`step` (returns actions taken)."""

    role = "service"

    def __init__(self, config: ServiceConfig, log: ServiceLog | None = None) -> None:
        from market.chain import LearningMarket, connect
        from market.db import Database
        from market.db.intents import TxGuard
        from market.storage import open_store

        self.config = config
        self.log = log or ServiceLog(config.json_logs)
        self.w3 = connect(config.rpc_url)
        self.chain_id = self.w3.eth.chain_id
        self.market = LearningMarket(self.w3, resolve_contract(config, self.chain_id))
        self.store = open_store(config.store, Path(config.data_dir))
        self.db = (
            Database(config.database_url()) if config.db_url else Database.at(Path(config.data_dir))
        )
        self.account = signing_account(config, self.w3, self.role)
        self.guard = TxGuard(
            self.db,
            self.w3,
            self.market.address,
            self.account.address,
            self.role,
            confirmations=config.confirmations,
        )
        from market.db.follow import Follower  # imports the chain layer's event indexer

        # the chain's events, from where this service last stopped reading
        self.follower = Follower(
            self.db,
            self.market,
            self.service_name,
            start_block=config.start_block,
            chunk=config.chunk,
            confirmations=config.confirmations,
            warn=self.log.warn,
        )
        self._stop = False

    @property
    def service_name(self) -> str:
        return f"{self.role}:{self.account.address}"

    def _choice_query(self, project_id: int):  # noqa: ANN202
        """This service's recorded decision on a project (join / serve or not)."""
        return select(ProjectChoice).where(
            ProjectChoice.contract == self.market.address,
            ProjectChoice.service == self.service_name,
            ProjectChoice.project_id == project_id,
        )

    def accepted_projects(self) -> list[int]:
        """The projects this service decided to join (trainer) or serve (aggregator)."""
        with self.db.session() as s:
            return sorted(
                s.scalars(
                    select(ProjectChoice.project_id).where(
                        ProjectChoice.contract == self.market.address,
                        ProjectChoice.service == self.service_name,
                        ProjectChoice.accepted.is_(True),
                    )
                )
            )

    def step(self) -> int:
        raise NotImplementedError

    def nudge_dev_clock(self, deadline: int) -> None:
        """Anvil mines on demand: once wall time passes a deadline, mine so chain time does."""
        from market.chain import chain_time, mine

        if self.chain_id == DEV_CHAIN_ID and time.time() > deadline >= chain_time(self.w3):
            mine(self.w3)

    def run(self, *, until_idle: bool = False, max_passes: int | None = None) -> int:
        """Loop until SIGTERM/SIGINT, ``max_passes``, or (``until_idle``) a pass with nothing
        to do; returns the number of actions taken."""
        previous = {}
        if _main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        self.log.event(
            "started", role=self.role, account=self.account.address, contract=self.market.address
        )
        actions = passes = failures = 0
        try:
            while not self._stop:
                try:
                    done = self.step()
                except ChainChanged:
                    raise  # not transient: the operator must act
                except (ChainError, OSError) as exc:  # node or network down for a while
                    failures += 1
                    if until_idle and failures >= 3:
                        raise
                    delay = min(30.0, self.config.poll_interval * 2**failures)
                    self.log.warn(f"pass failed ({exc}); retrying in {delay:g}s")
                    time.sleep(delay)
                    continue
                failures = 0
                actions += done
                passes += 1
                if (until_idle and done == 0) or (max_passes and passes >= max_passes):
                    break
                if done == 0:
                    time.sleep(self.config.poll_interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.log.event("stopped", role=self.role, actions=actions, passes=passes)
        return actions

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.log.event("stopping", signal=signal.Signals(signum).name)
        self._stop = True

    def close(self) -> None:
        self.db.dispose()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread() and sys.platform != "win32"


def build_config(kind: str, path: Path | None, **flags: Any) -> ServiceConfig:
    from market.config import AggregatorConfig, TrainerConfig, load_config

    classes = {"trainer": TrainerConfig, "aggregator": AggregatorConfig}
    if kind not in classes:
        raise ConfigError(f"unknown service kind {kind!r}: use 'trainer' or 'aggregator'")
    return load_config(classes[kind], path, **flags)


def run_service(
    kind: str,
    path: Path | None,
    *,
    until_idle: bool = False,
    max_passes: int | None = None,
    **flags: Any,
) -> int:
    """Build the service ``kind`` from config file + environment + flags and run it."""
    config = build_config(kind, path, **flags)
    if kind == "trainer":
        from market.trainer.service import TrainerService

        service: Service = TrainerService(config)  # type: ignore[arg-type]
    else:
        from market.aggregator.runner import AggregatorRunner

        service = AggregatorRunner(config)  # type: ignore[arg-type]
    try:
        return service.run(until_idle=until_idle, max_passes=max_passes)
    finally:
        service.close()
