"""The dashboard server: FastAPI app over the chain, the store and the reputation book."""

from market.api.app import create_app
from market.api.settings import Settings

__all__ = ["Settings", "create_app"]
