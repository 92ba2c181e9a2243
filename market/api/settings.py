"""What the dashboard server connects to: one chain, one market contract, one store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEV_CHAIN_ID = 31337


@dataclass(frozen=True)
class Settings:
    """Configuration of :func:`market.api.create_app`.

    ``contract`` None means the address recorded by ``market dev chain`` under ``data_dir``.
    ``holdout`` names the held-out set the server scores each round's model on
    (``"digits"``: the 20 % test split of the 8×8 digits with ``holdout_seed``, as the demo
    uses; ``"none"``: no accuracy). ``dev_keys`` lets the page send transactions with anvil's
    dev keys — honoured on chain 31337 only.
    """

    rpc_url: str = "http://127.0.0.1:8545"
    contract: str | None = None
    store: str = "embedded"
    data_dir: Path = Path(".market")
    holdout: str = "digits"
    holdout_seed: int = 0
    dev_keys: bool = True
    poll_seconds: float = 1.0
    web_dir: Path | None = None  # default: the repository's web/ folder
