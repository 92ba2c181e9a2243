"""The IPFS-node backend: a :class:`Store` over the Kubo RPC API (``/api/v0/...``).

Client choice: plain ``httpx`` (already a dependency), not ``ipfshttpclient``. The latter's
``connect()`` refuses every daemon newer than 0.7 (Kubo ≥ 0.8, and js-ipfs, which reports
0.18.1), it is unmaintained, and it hides the request timeouts and streaming we need:
a size check before reading, a read capped at that size, bounded retries with backoff,
and the node-side ``timeout`` argument so a missing CID fails instead of hanging. The
handful of calls used here (add, cat, block/stat, block/get, pin/add, pin/ls, refs,
version) are the same on Kubo and js-ipfs.

Every blob is added with the parameters that make node CIDs equal to
:func:`market.storage.cid.cid_of`: CIDv1, raw leaves, 256 KiB fixed chunks, sha2-256,
base32, and pinned. ``get`` never trusts the node: the size comes from the verified root
block, the read stops at that size, and the bytes are checked by recomputing the CID;
a blob made with other parameters (e.g. a CIDv0) is checked block by block instead.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from market.errors import ConfigError, IntegrityError, StorageError
from market.storage.base import DEFAULT_MAX_SIZE, Store
from market.storage.cid import cid_of, normalize_cid, parse_cid
from market.storage.unixfs import (
    CHUNK_SIZE,
    MAX_BLOCK_SIZE,
    TooLargeError,
    decode_file_node,
    reassemble,
    verify_block,
)

T = TypeVar("T")

ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "hash": "sha2-256",
    "cid-base": "base32",
    "pin": "true",
    "progress": "false",
}
START_HINT = (
    "start one with `scripts/ipfs-node.sh start` (API http://127.0.0.1:5001), "
    "or give the RPC API URL of a running node"
)
_READ_CHUNK = 1 << 20
# Error answers a node gives while it starts or stops: worth retrying, like a refused socket.
_TRANSIENT = ("database is not open", "not started", "not open", "is stopping", "closed")


class NodeUnavailableError(StorageError):
    """The node could not be reached (down, restarting, wrong URL) after every retry."""


class _NodeError(StorageError):
    """The node answered with an error (not retried: asking again gives the same answer)."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class IpfsNodeStore(Store):
    """Blobs on an IPFS node reached by its RPC API URL (``http://127.0.0.1:5001``)."""

    def __init__(
        self,
        api_url: str,
        timeout: float = 30,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        probe_timeout: float = 0.5,
    ) -> None:
        """``timeout`` bounds each request (and what the node waits for a missing block);
        a transport failure is retried ``retries`` times after ``backoff * 2**k`` seconds;
        ``probe_timeout`` is how long ``has`` lets the node look for an unpinned block."""
        api_url = api_url.strip()
        if "://" not in api_url:  # "127.0.0.1:5001", as people type it
            api_url = f"http://{api_url}"
        self.api_url = api_url.rstrip("/")
        if self.api_url.endswith("/api/v0"):
            self.api_url = self.api_url[: -len("/api/v0")]
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.probe_timeout = float(probe_timeout)
        try:
            host = httpx.URL(self.api_url).host
        except httpx.InvalidURL as exc:
            raise ConfigError(f"invalid IPFS API URL {api_url!r}: {exc}") from exc
        if not host:
            raise ConfigError(f"invalid IPFS API URL {api_url!r}; use http://127.0.0.1:5001")
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v0/",
            timeout=httpx.Timeout(self.timeout),
            # A proxy from the environment must not sit between us and a local node.
            trust_env=host not in ("127.0.0.1", "localhost", "::1"),
        )

    def __repr__(self) -> str:
        return f"IpfsNodeStore({self.api_url!r})"

    def close(self) -> None:
        """Close the pooled HTTP connections (the store also works as a context manager)."""
        self._http.close()

    def __enter__(self) -> IpfsNodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Store ------------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Add and pin ``data``; the node's CID must equal ours (same add parameters)."""
        data = bytes(data)

        def add() -> str:
            # BytesIO over bytes shares the buffer: httpx streams it in chunks, no copy.
            files = {"file": ("blob", io.BytesIO(data), "application/octet-stream")}
            r = self._http.post("add", params=ADD_PARAMS, files=files)
            self._raise_for_status(r, "add")
            lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
            hashes = [line["Hash"] for line in lines if "Hash" in line]
            if not hashes:
                raise StorageError(f"the node at {self.api_url} answered add without a CID")
            return str(hashes[-1])

        # Adding is idempotent (same bytes, same CID), so a retry after a lost answer is safe.
        node_cid = normalize_cid(self._retry("add", add))
        expected = cid_of(data)
        if node_cid != expected:
            raise StorageError(
                f"the node at {self.api_url} stored the blob as {node_cid} but its CID is "
                f"{expected}: the node ignored the add parameters {ADD_PARAMS}"
            )
        return expected

    def get(self, cid: str, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
        """The verified bytes of ``cid``; ``TooLargeError`` before reading if over ``max_size``."""
        canonical = normalize_cid(cid)
        size = self._size(canonical, max_size)
        data = self._retry("cat", lambda: self._cat(canonical, size))
        if cid_of(data) == canonical:
            return data
        del data
        # Another chunking/CID layout, or the node sent wrong bytes: check every block.
        return reassemble(canonical, self._block, max_size=max_size)

    def has(self, cid: str) -> bool:
        """Pinned on the node, or every block found locally within ``probe_timeout``."""
        canonical = normalize_cid(cid)
        pins = self._call("pin/ls", arg=canonical, type="recursive", allow_error=True)
        if pins is not None and canonical in {normalize_cid(k) for k in pins.get("Keys", {})}:
            return True
        probe = self._ms(self.probe_timeout)
        found = self._call(
            "block/stat", allow_error=True, arg=canonical, offline="true", timeout=probe
        )
        if found is None:
            return False
        if parse_cid(canonical).codec == "raw":
            return True

        def refs() -> bool:
            params = {"arg": canonical, "recursive": "true", "offline": "true", "timeout": probe}
            r = self._http.post("refs", params=params)
            if r.status_code != 200:
                return False
            return all(
                not json.loads(line).get("Err") for line in r.text.splitlines() if line.strip()
            )

        return self._retry("refs", refs)

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively on the node (fails if the node cannot find its blocks)."""
        canonical = normalize_cid(cid)
        self._call("pin/add", arg=canonical, recursive="true", timeout=self._node_wait())

    def version(self) -> str:
        """The node's version string (also a cheap liveness check)."""
        return str(self._call("version")["Version"])

    # -- internals --------------------------------------------------------------------------

    def _size(self, cid: str, max_size: int) -> int:
        """File size from the root block itself (verified), before any data is read."""
        stat = self._call("block/stat", arg=cid, timeout=self._node_wait())
        block_size = int(stat["Size"])
        if parse_cid(cid).codec == "raw":
            if block_size > max_size:
                raise TooLargeError(
                    f"{cid} is {block_size} bytes, over the limit of {max_size}; "
                    "raise max_size if this blob is expected"
                )
            return block_size
        root = self._block(cid, MAX_BLOCK_SIZE)
        verify_block(cid, root)
        size = decode_file_node(cid, root).filesize
        if size > max_size:
            raise TooLargeError(
                f"{cid} is {size} bytes, over the limit of {max_size}; "
                "raise max_size if this blob is expected"
            )
        return size

    def _cat(self, cid: str, size: int) -> bytes:
        """Read exactly ``size`` bytes; more, or fewer, means the node sent the wrong file."""
        params = {"arg": cid, "timeout": self._node_wait()}
        with self._http.stream("POST", "cat", params=params) as r:
            if r.status_code != 200:
                r.read()
                self._raise_for_status(r, f"cat {cid}")
            chunks: list[bytes] = []
            got = 0
            for chunk in r.iter_bytes(_READ_CHUNK):
                got += len(chunk)
                if got > size:
                    raise IntegrityError(
                        f"the node at {self.api_url} sent more than the {size} bytes {cid} "
                        "holds; it is corrupt or lying: repair its repo (ipfs repo verify)"
                    )
                chunks.append(chunk)
        if got != size:
            raise IntegrityError(
                f"the node at {self.api_url} sent {got} of the {size} bytes of {cid}"
            )
        data = b"".join(chunks)
        chunks.clear()
        return data

    def _block(self, cid: str, limit: int) -> bytes:
        """One raw block, refused unread if the node says it is over ``limit``."""
        stat = self._call("block/stat", arg=cid, timeout=self._node_wait())
        if int(stat["Size"]) > limit:
            raise TooLargeError(f"block {cid} is {stat['Size']} bytes, over the limit {limit}")

        def get() -> bytes:
            params = {"arg": cid, "timeout": self._node_wait()}
            with self._http.stream("POST", "block/get", params=params) as r:
                if r.status_code != 200:
                    r.read()
                    self._raise_for_status(r, f"block/get {cid}")
                out = bytearray()
                for chunk in r.iter_bytes(_READ_CHUNK):
                    out += chunk
                    if len(out) > limit:
                        raise TooLargeError(f"block {cid} is over the limit {limit}")
                return bytes(out)

        return self._retry("block/get", get)

    def _call(self, path: str, allow_error: bool = False, **params: str) -> dict | None:
        """POST a small JSON call; ``None`` instead of an error answer if ``allow_error``."""

        def once() -> dict | None:
            r = self._http.post(path, params=params)
            if allow_error and r.status_code != 200:
                return None
            self._raise_for_status(r, path)
            return r.json()

        try:
            return self._retry(path, once)
        except _NodeError as exc:
            if exc.timed_out and "arg" in params:
                raise StorageError(
                    f"{params['arg']} is not available on the node at {self.api_url} "
                    f"(not found within {self.timeout:g}s); add it there first, "
                    "or connect the node to one that has it"
                ) from exc
            raise

    def _raise_for_status(self, r: httpx.Response, what: str) -> None:
        if r.status_code == 200:
            return
        if r.status_code in (502, 503, 504):
            raise httpx.RemoteProtocolError(f"HTTP {r.status_code}", request=r.request)
        try:
            message = str(r.json().get("Message", r.text))
        except (ValueError, AttributeError):
            message = r.text[:300]
        if any(mark in message.lower() for mark in _TRANSIENT):
            raise httpx.RemoteProtocolError(f"node not ready: {message}", request=r.request)
        raise _NodeError(
            f"the IPFS node at {self.api_url} refused {what}: {message}",
            timed_out="timed out" in message.lower(),
        )

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transport failures with exponential backoff."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return fn()
            except httpx.TimeoutException as exc:
                last = exc
            except httpx.TransportError as exc:  # refused, reset, closed mid-stream
                last = exc
        if isinstance(last, httpx.TimeoutException):
            raise NodeUnavailableError(
                f"the IPFS node at {self.api_url} did not answer {what} within "
                f"{self.timeout:g}s ({self.retries + 1} tries); check that it is running "
                f"and not overloaded, or raise the timeout; {START_HINT}"
            ) from last
        raise NodeUnavailableError(
            f"the IPFS node at {self.api_url} is unreachable ({what}: {last}; "
            f"{self.retries + 1} tries); {START_HINT}"
        ) from last

    def _node_wait(self) -> str:
        """What the node may wait for a missing block: less than our own read timeout, so
        its "timed out" answer (not found, not retried) arrives before we give up."""
        return self._ms(self.timeout * 0.8)

    @staticmethod
    def _ms(seconds: float) -> str:
        return f"{max(1, int(seconds * 1000))}ms"
