"""One root exception for the whole package, as web3.py does with ``Web3Exception``.

Every error the market raises derives from :class:`MarketError`, so a script can catch
one type; each package has its own subclass, and every message says what to do next.
"""


class MarketError(Exception):
    """Root of every error raised by ``market``."""


class ConfigError(MarketError):
    """A setting, key or argument is missing or invalid."""


class ChainError(MarketError):
    """Talking to the EVM chain failed, or a transaction reverted."""


class StorageError(MarketError):
    """The content-addressed store could not store or return the requested bytes."""


class IntegrityError(StorageError):
    """Bytes do not match the content identifier they were requested by."""


class UpdateFormatError(MarketError):
    """A model update file is malformed, oversized or does not match the model."""


class AggregationError(MarketError):
    """A robust rule could not aggregate the given updates."""


class ProofError(MarketError):
    """A Merkle proof, transcript or zero-knowledge proof is invalid."""


class ReputationError(MarketError):
    """The reputation graph or admission policy could not answer."""


class TrainingError(MarketError):
    """Local training or the trainer's round protocol failed."""
