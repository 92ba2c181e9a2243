"""One typed configuration for the long-running services, from file, environment and flags.

Precedence, highest first: command-line flags, ``MARKET_*`` environment variables, the TOML
file given with ``--config``, defaults. The same ``MARKET_*`` names as the one-shot commands
(``MARKET_RPC_URL``, ``MARKET_DB_URL``, ``MARKET_PRIVATE_KEY``…) apply. Secrets (private
key, keystore password, a database password inside the URL) are ``SecretStr`` or masked:
:meth:`ServiceConfig.show` never returns them in clear.

A file may hold both services' settings; each reads the top level and its own section::

    rpc_url = "http://127.0.0.1:8545"
    db_url = "postgresql+psycopg://market@127.0.0.1:5432/market"
    confirmations = 2

    [trainer]
    model_kinds = ["mlp"]
    data_schemas = ["digits-8x8"]
    min_reward = "0.1"          # ETH per round
    data = "/srv/trainer/data"  # 'digits', a .npz/.csv file or a directory of them
    # loader = "mypkg.data:load"  (called with the project spec, returns a Dataset)

    aggregator_api = "http://127.0.0.1:8650"  # gated projects: apply + fetch admission

    [aggregator]
    projects = [1, 4]
    round_interval = 60.0
    api_listen = "127.0.0.1:8650"  # off unless set
"""

from __future__ import annotations

import contextvars
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import InitSettingsSource

from market.errors import ConfigError

WEI_PER_ETH = 10**18
DEV_CHAIN_ID = 31337
ROLE_DEV_ACCOUNT = {"aggregator": 2, "trainer": 3}

_FILE_DATA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "market_config_file", default=None
)


class ServiceConfig(BaseSettings):
    """What both services need: where the chain, store and database are, and who signs."""

    model_config = SettingsConfigDict(env_prefix="MARKET_", extra="forbid", validate_default=True)

    rpc_url: str = "http://127.0.0.1:8545"
    contract: str | None = None
    store: str = "embedded"
    data_dir: Path = Path(".market")
    db_url: str | None = None
    account: int | None = Field(default=None, description="dev account index (31337 only)")
    keystore: Path | None = None
    keystore_password: SecretStr | None = None
    private_key: SecretStr | None = None
    confirmations: int = Field(default=0, ge=0)
    poll_interval: float = Field(default=1.0, gt=0)
    chunk: int = Field(default=2_000, ge=1)
    start_block: int = Field(default=0, ge=0)
    projects: list[int] | None = Field(default=None, description="serve only these ids")
    json_logs: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = InitSettingsSource(settings_cls, init_kwargs=dict(_FILE_DATA.get() or {}))
        return (init_settings, env_settings, file_source)

    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'market.db'}"

    def show(self) -> dict[str, Any]:
        """The effective settings as JSON-able values, secrets masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        shown["db_url"] = mask_url(self.database_url())
        return shown


C = TypeVar("C", bound=ServiceConfig)


class TrainerConfig(ServiceConfig):
    """``market trainer run``: which projects to join and where the trainer's data is."""

    kind: Literal["trainer"] = "trainer"
    model_kinds: list[str] = ["mlp"]
    data_schemas: list[str] | None = None
    min_reward: str = Field(default="0", description="minimum reward per round, in ETH")
    data: str = Field(default="digits", description="'digits', a .npz/.csv file or a directory")
    loader: str | None = Field(default=None, description="'module:function' returning a Dataset")
    digits_part: int = 0
    digits_parts: int = 5
    digits_alpha: float = 0.5
    seed: int = 0
    auto_claim: bool = True
    aggregator_api: str | None = Field(
        default=None,
        description="the aggregator's API (http://host:port): where gated rounds' signed "
        "applications go and their admission documents come from (checked against chain)",
    )

    @field_validator("min_reward")
    @classmethod
    def _eth_amount(cls, value: str) -> str:
        parse_eth(value)
        return value

    @property
    def min_reward_wei(self) -> int:
        return parse_eth(self.min_reward)


class AggregatorConfig(ServiceConfig):
    """``market aggregator run``: which projects to serve and when to open rounds."""

    kind: Literal["aggregator"] = "aggregator"
    open_rounds: bool = True
    round_interval: float = Field(default=0.0, ge=0, description="seconds between rounds")
    prefetch: bool = True
    api_listen: str | None = Field(
        default=None,
        description="'host:port' of the HTTP API taking trainers' applications and serving "
        "admission documents (off when unset; e.g. 127.0.0.1:8650)",
    )
    application_window: float = Field(
        default=0.0,
        ge=0,
        description="chain seconds a gated round takes applications before it is opened, "
        "from the project's creation (round 1) or the previous round's opening",
    )

    @field_validator("api_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)
        return value


def listen_address(value: str) -> tuple[str, int]:
    """'host:port' as (host, port); ConfigError on anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"not a host:port listen address: {value!r} (e.g. 127.0.0.1:8650)")
    return host.strip("[]"), int(port)


def parse_eth(value: str) -> int:
    """An ETH amount as text in wei, exactly."""
    try:
        wei = Decimal(str(value)) * WEI_PER_ETH
    except InvalidOperation as exc:
        raise ConfigError(f"not an ETH amount: {value!r}") from exc
    if wei != wei.to_integral_value() or wei < 0:
        raise ConfigError(f"ETH amount {value!r} is negative or finer than one wei")
    return int(wei)


def mask_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def load_config(cls: type[C], path: Path | None = None, **flags: Any) -> C:
    """``cls`` from the TOML file at ``path`` (optional), the environment and ``flags``
    (None values are ignored, so unset CLI options do not override the file)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        kind = cls.model_fields["kind"].default if "kind" in cls.model_fields else None
        section = data.pop(kind, None) if kind else None
        for other in ("trainer", "aggregator"):
            data.pop(other, None)
        if isinstance(section, dict):
            data.update(section)
    token = _FILE_DATA.set(data)
    try:
        return cls(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from None
    finally:
        _FILE_DATA.reset(token)


def signing_account(config: ServiceConfig, w3: Any, role: str) -> Any:
    """The service's LocalAccount: private key, keystore, or a dev account on 31337."""
    from eth_account import Account

    from market.chain import dev_accounts

    if config.private_key is not None:
        try:
            return Account.from_key(config.private_key.get_secret_value().strip())
        except Exception:
            raise ConfigError("private_key (MARKET_PRIVATE_KEY) is not a valid key") from None
    if config.keystore is not None:
        import json

        if config.keystore_password is None:
            raise ConfigError(
                f"keystore {config.keystore} given but no keystore_password "
                "(set MARKET_KEYSTORE_PASSWORD)"
            )
        try:
            encrypted = json.loads(config.keystore.read_text())
            return Account.from_key(
                Account.decrypt(encrypted, config.keystore_password.get_secret_value())
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot open keystore {config.keystore}: {exc.__class__.__name__} "
                "(wrong path, not a keystore JSON, or wrong password)"
            ) from None
    if w3.eth.chain_id != DEV_CHAIN_ID:
        raise ConfigError(
            f"no signing key for the {role} on chain {w3.eth.chain_id}: set MARKET_PRIVATE_KEY "
            "or keystore + MARKET_KEYSTORE_PASSWORD (dev accounts only on chain 31337)"
        )
    accounts = dev_accounts(w3)
    index = ROLE_DEV_ACCOUNT[role] if config.account is None else config.account
    if not 0 <= index < len(accounts):
        raise ConfigError(f"account must be 0..{len(accounts) - 1}, got {index}")
    return accounts[index]
