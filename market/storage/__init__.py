"""Content-addressed storage: IPFS-identical CIDs, the embedded store, the update format."""

from market.storage.base import DEFAULT_MAX_SIZE, Store
from market.storage.cid import (
    CidInfo,
    InvalidCidError,
    cid_from_digest,
    cid_of,
    digest_of_cid,
    normalize_cid,
    parse_cid,
)
from market.storage.embedded import EmbeddedStore, open_store
from market.storage.unixfs import MissingBlockError, TooLargeError, build_dag, reassemble
from market.storage.updates import (
    BLOCK_SIZE,
    ModelLayout,
    QuantizedUpdate,
    UpdateFormatError,
    bytes_digest,
    decode_model,
    decode_update,
    encode_model,
    encode_quantized,
    encode_update,
    quantize,
)

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_MAX_SIZE",
    "CidInfo",
    "EmbeddedStore",
    "InvalidCidError",
    "MissingBlockError",
    "ModelLayout",
    "QuantizedUpdate",
    "Store",
    "TooLargeError",
    "UpdateFormatError",
    "build_dag",
    "bytes_digest",
    "cid_from_digest",
    "cid_of",
    "decode_model",
    "decode_update",
    "digest_of_cid",
    "encode_model",
    "encode_quantized",
    "encode_update",
    "normalize_cid",
    "open_store",
    "parse_cid",
    "quantize",
    "reassemble",
]
