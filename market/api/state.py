"""The server's connections and caches: one chain, one market, one store.

Everything the dashboard shows is read from the chain and the content-addressed store; the
caches below only hold values that cannot change (a blob by digest, a model's accuracy), so
a restart never shows anything different.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from market.aggregator.report import RoundReport
from market.chain import LearningMarket, connect, dev_accounts
from market.db import Database
from market.errors import ConfigError, StorageError
from market.spec import ProjectSpec
from market.storage import Store, decode_model, open_store
from market.storage.resolve import get_by_digest

from .settings import DEV_CHAIN_ID, Settings

MAX_JSON_BYTES = 16 * 1024 * 1024


class Services:
    """Lazily built connections; safe to share between request threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._reports: dict[bytes, tuple[str, RoundReport]] = {}
        self._specs: dict[bytes, tuple[str, ProjectSpec]] = {}
        self._accuracy: dict[bytes, float | None] = {}
        self._holdout: Any = None
        self.tx_lock = threading.Lock()  # one dev-key transaction at a time (nonces)

    @cached_property
    def w3(self) -> Web3:
        return connect(self.settings.rpc_url)

    @cached_property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    @cached_property
    def market(self) -> LearningMarket:
        address = self.settings.contract
        if address is None:
            path = self.settings.data_dir / "deployments" / f"{self.chain_id}.json"
            try:
                address = json.loads(path.read_text())["LearningMarket"]
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(
                    f"no LearningMarket deployment for chain {self.chain_id} in {path}; "
                    "start `market dev chain` or pass --contract"
                ) from exc
        return LearningMarket(self.w3, address)

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings.store, self.settings.data_dir)

    @cached_property
    def db(self) -> Database:
        """The local database (published admission CIDs, indexer state), read only here."""
        return Database.at(self.settings.data_dir)

    @property
    def dev_chain(self) -> bool:
        return self.chain_id == DEV_CHAIN_ID

    def dev_accounts(self) -> list[LocalAccount]:
        """Anvil's funded accounts; refused off the dev chain or when dev keys are off."""
        if not (self.settings.dev_keys and self.dev_chain):
            raise ConfigError(
                "dev accounts are available only on the dev chain (31337) with dev keys on; "
                "use a browser wallet"
            )
        return dev_accounts(self.w3)

    def dev_account(self, address: str) -> LocalAccount:
        for account in self.dev_accounts():
            if account.address.lower() == address.lower():
                return account
        raise ConfigError(f"{address} is not one of the dev chain's accounts")

    # -- immutable blobs, cached by digest ----------------------------------------------

    def spec(self, digest: bytes) -> tuple[str, ProjectSpec]:
        if digest not in self._specs:
            cid, data = get_by_digest(self.store, digest, max_size=MAX_JSON_BYTES)
            self._specs[digest] = (cid, ProjectSpec.from_bytes(data))
        return self._specs[digest]

    def report(self, digest: bytes) -> tuple[str, RoundReport]:
        if digest not in self._reports:
            cid, data = get_by_digest(self.store, digest, max_size=MAX_JSON_BYTES)
            self._reports[digest] = (cid, RoundReport.from_bytes(data))
        return self._reports[digest]

    def accuracy(self, model_digest: bytes, spec: ProjectSpec) -> float | None:
        """Top-1 accuracy of a model on the configured held-out set (None: no held-out set)."""
        if self.settings.holdout == "none":
            return None
        if model_digest not in self._accuracy:
            self._accuracy[model_digest] = self._evaluate(model_digest, spec)
        return self._accuracy[model_digest]

    def _evaluate(self, model_digest: bytes, spec: ProjectSpec) -> float | None:
        from market.aggregator.service import layout_of
        from market.trainer.local import evaluate
        from market.trainer.model import ModelSpec, build_model, set_weights

        if spec.data_schema != "digits-8x8":
            return None  # the held-out set does not fit this project's data
        holdout = self._held_out()
        try:
            _, data = get_by_digest(self.store, model_digest)
        except StorageError:
            return None
        layout = layout_of(spec)
        model = build_model(ModelSpec.from_dict(spec.model))
        set_weights(model, decode_model(data, layout))
        return round(evaluate(model, holdout), 4)

    def _held_out(self) -> Any:
        with self._lock:
            if self._holdout is None:
                if self.settings.holdout != "digits":
                    raise ConfigError(
                        f"unknown held-out set {self.settings.holdout!r}: use 'digits' or 'none'"
                    )
                from market.trainer.data import load_digits, train_test_split

                _, test = train_test_split(
                    load_digits(), test_fraction=0.2, seed=self.settings.holdout_seed
                )
                self._holdout = test
            return self._holdout

    def update_vector(self, digest: bytes, spec: ProjectSpec) -> np.ndarray | None:
        """A revealed update as float64 values, or None when missing or malformed."""
        from market.aggregator.service import layout_of
        from market.storage import decode_update

        try:
            _, data = get_by_digest(self.store, digest, max_size=spec.max_update_bytes)
            return decode_update(data, layout_of(spec)).dense()
        except Exception:  # noqa: BLE001 - an invalid update is shown as missing, not a 500
            return None
