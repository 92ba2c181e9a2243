import hashlib

import numpy as np
import pytest

from market.errors import IntegrityError
from market.storage.cid import cid_bytes_v1, cid_for_block, cid_of, parse_cid, parse_cid_bytes
from market.storage.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    PBLink,
    PBNode,
    TooLargeError,
    UnixFSData,
    build_dag,
    decode_file_node,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs,
    reassemble,
    root_cid,
)
from tests.storage.vectors import (
    OURS_REGRESSION,
    TEST_CID_V1,
    TEST_CID_V1_VECTORS,
    V0_2015,
    V0_2015_VECTORS,
    V0_SMALL,
    V0_ZEROS,
    V1_2025,
    V1_2025_VECTORS,
    deterministic_bytes,
)


def blob(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def fetcher(blocks: dict[str, bytes]):
    def fetch(cid: str, limit: int) -> bytes:
        return blocks[cid]

    return fetch


# -- published vectors -------------------------------------------------------------------


@pytest.mark.parametrize(("size", "seed", "cid"), V1_2025_VECTORS)
def test_raw_leaf_profile_vectors_one_and_two_chunks(size, seed, cid):
    assert root_cid(deterministic_bytes(size, seed), **V1_2025) == cid


@pytest.mark.parametrize(("data", "cid"), V0_SMALL.items())
def test_dag_pb_leaf_vectors_small(data, cid):
    assert root_cid(data, **V0_2015) == cid


@pytest.mark.parametrize(("size", "seed", "cid"), V0_2015_VECTORS[:2])
def test_256k_chunking_vectors_at_and_over_chunk_size(size, seed, cid):
    assert root_cid(deterministic_bytes(size, seed), **V0_2015) == cid


@pytest.mark.slow
@pytest.mark.parametrize(("size", "seed", "cid"), V0_2015_VECTORS[2:])
def test_256k_174_link_balanced_layout_vectors(size, seed, cid):
    """Same chunker and layout as ours, at 174 links, 174 + 1 byte and 175 chunks."""
    assert root_cid(deterministic_bytes(size, seed), **V0_2015) == cid


@pytest.mark.slow
def test_zero_file_over_174_chunks_vector():
    size, cid = V0_ZEROS
    assert root_cid(bytes(size), **V0_2015) == cid


@pytest.mark.slow
@pytest.mark.parametrize(("size", "seed", "cid"), TEST_CID_V1_VECTORS)
def test_raw_leaf_multi_level_vectors(size, seed, cid):
    """CIDv1 + raw leaves + 174 links: 174 chunks fill one node, 175 need two levels."""
    assert root_cid(deterministic_bytes(size, seed), **TEST_CID_V1) == cid


# -- structure -----------------------------------------------------------------------------


def test_single_chunk_is_one_raw_block():
    for n in (0, 1, CHUNK_SIZE):
        data = blob(n)
        root, blocks = build_dag(data)
        assert blocks == {root: data}
        assert root == cid_for_block(data, "raw")


def test_two_chunks_root_node_bytes():
    data = blob(CHUNK_SIZE + 1)
    root, blocks = build_dag(data)
    assert len(blocks) == 3
    leaf1, leaf2 = cid_of(data[:CHUNK_SIZE]), cid_of(data[CHUNK_SIZE:])
    node = blocks[root]
    # Links first (field 2), each with Hash, empty Name, Tsize; then Data (field 1).
    link1 = b"\x0a\x24" + bytes.fromhex("01551220") + parse_cid(leaf1).digest
    link1 += b"\x12\x00\x18\x80\x80\x10"
    assert node.startswith(b"\x12" + bytes([len(link1)]) + link1)
    fs = decode_unixfs(decode_pbnode(node).data)
    assert fs == UnixFSData(2, None, CHUNK_SIZE + 1, (CHUNK_SIZE, 1))
    assert decode_unixfs(decode_pbnode(node).data) == decode_unixfs(
        bytes.fromhex("0802") + b"\x18\x81\x80\x10" + b"\x20\x80\x80\x10" + b"\x20\x01"
    )
    assert [leaf1, leaf2] == [c for c, _ in decode_file_node(root, node).children]


def test_tree_shape_over_174_chunks():
    chunk = 1024
    n_chunks = MAX_LINKS * 2 + 3
    root, blocks = build_dag(blob(chunk * n_chunks), chunk_size=chunk)
    top = decode_file_node(root, blocks[root])
    sizes = [s for _, s in top.children]
    assert sizes == [MAX_LINKS * chunk, MAX_LINKS * chunk, 3 * chunk]
    last = decode_file_node(top.children[2][0], blocks[top.children[2][0]])
    assert len(last.children) == 3


def test_tsize_is_cumulative():
    chunk = 64
    root, blocks = build_dag(blob(chunk * 200), chunk_size=chunk)
    node = decode_pbnode(blocks[root])
    for link in node.links:
        child = blocks[parse_cid_bytes(link.hash).to_v1()]
        inner = decode_pbnode(child)
        assert link.tsize == len(child) + sum(x.tsize for x in inner.links)


# -- reassembly ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 4096, 5 * 1024 + 3])
def test_round_trip_small_chunks(n):
    data = blob(n, n)
    root, blocks = build_dag(data, chunk_size=256, max_links=4)
    assert reassemble(root, fetcher(blocks)) == data
    assert root_cid(data, chunk_size=256, max_links=4) == root


def test_round_trip_default_profile():
    data = blob(3 * CHUNK_SIZE + 17)
    root, blocks = build_dag(data)
    assert root == cid_of(data)
    assert reassemble(root, fetcher(blocks)) == data


def test_tampered_leaf_is_named():
    data = blob(2000)
    root, blocks = build_dag(data, chunk_size=256)
    victim = next(c for c in blocks if c != root)
    blocks[victim] = bytes([blocks[victim][0] ^ 1]) + blocks[victim][1:]
    with pytest.raises(IntegrityError, match=victim):
        reassemble(root, fetcher(blocks))


def test_hash_valid_dag_with_lying_sizes_is_refused():
    """A crafted root that hashes correctly but declares a wrong blocksize."""
    leaf = b"x" * 10
    leaf_cid = cid_of(leaf)
    fs = UnixFSData(2, None, 9, (9,))
    link = PBLink(cid_bytes_v1(parse_cid(leaf_cid).digest, "raw"), "", 10)
    node = encode_pbnode(PBNode((link,), encode_unixfs(fs)))
    root = cid_for_block(node, "dag-pb")
    with pytest.raises(IntegrityError, match=leaf_cid):
        reassemble(root, fetcher({root: node, leaf_cid: leaf}))


def test_size_limit_checked_from_root_before_leaves():
    data = blob(4000)
    root, blocks = build_dag(data, chunk_size=256)
    asked: list[str] = []

    def fetch(cid: str, limit: int) -> bytes:
        asked.append(cid)
        return blocks[cid]

    with pytest.raises(TooLargeError):
        reassemble(root, fetch, max_size=3999)
    assert asked == [root]
    assert reassemble(root, fetch, max_size=4000) == data


def test_raw_root_over_limit():
    data = blob(100)
    with pytest.raises(TooLargeError):
        reassemble(cid_of(data), fetcher({cid_of(data): data}), max_size=99)


def test_digest_matches_hashlib_for_leaf():
    data = blob(10)
    assert parse_cid(cid_of(data)).digest == hashlib.sha256(data).digest()


def test_reassemble_reads_dag_pb_leaf_files_too():
    """Files added with a node's CIDv0 defaults (dag-pb leaves) read back as well."""
    data = blob(3000, 9)
    root, blocks = build_dag(data, chunk_size=256, max_links=3, raw_leaves=False, cid_version=0)
    assert root.startswith("Qm")
    canon = {parse_cid(c).to_v1(): b for c, b in blocks.items()}
    assert reassemble(root, fetcher(canon)) == data


@pytest.mark.parametrize(("size", "cid"), OURS_REGRESSION)
def test_our_profile_regression_vectors(size, cid):
    assert cid_of(deterministic_bytes(size, "ours")) == cid


def _go_balanced_root(data: bytes, chunk: int, max_links: int) -> str:
    """go-unixfs importer/balanced, transcribed literally (depth-first fillNodeRec)."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    it = iter(chunks)
    pending = [next(it)]

    def done() -> bool:
        if pending:
            return False
        nxt = next(it, None)
        if nxt is None:
            return True
        pending.append(nxt)
        return False

    def leaf() -> tuple[bytes, int, int]:
        c = pending.pop() if pending else next(it)
        return cid_bytes_v1(hashlib.sha256(c).digest(), "raw"), len(c), len(c)

    def node(children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
        fs = UnixFSData(2, None, sum(c[2] for c in children), tuple(c[2] for c in children))
        links = tuple(PBLink(c[0], "", c[1]) for c in children)
        block = encode_pbnode(PBNode(links, encode_unixfs(fs)))
        cid = cid_bytes_v1(hashlib.sha256(block).digest(), "dag-pb")
        return cid, len(block) + sum(c[1] for c in children), fs.filesize

    def fill(children: list, depth: int) -> list:
        while len(children) < max_links and not done():
            children.append(leaf() if depth == 1 else node(fill([], depth - 1)))
        return children

    root = leaf()
    depth = 1
    while not done():
        root = node(fill([root], depth))
        depth += 1
    return parse_cid_bytes(root[0]).to_v1()


@pytest.mark.parametrize("max_links", [2, 3, 4, 174])
def test_matches_go_depth_first_builder(max_links):
    rng = np.random.default_rng(max_links)
    sizes = [0, 1, 16, 17, 16 * max_links, 16 * max_links + 1, 16 * max_links**2 + 1]
    sizes += [16 * max_links**3 + 5] if max_links < 10 else []
    sizes += list(rng.integers(0, 16 * min(max_links**2 * 3, max_links * 5), size=10))
    for n in sizes:
        data = rng.bytes(int(n))
        expected = _go_balanced_root(data, 16, max_links)
        assert root_cid(data, chunk_size=16, max_links=max_links) == expected, n


def _node(children: list[tuple[str, int, int]]) -> tuple[str, bytes]:
    """A hand-made file node over (cid, tsize, filesize) children."""
    fs = UnixFSData(2, None, sum(c[2] for c in children), tuple(c[2] for c in children))
    links = tuple(
        PBLink(cid_bytes_v1(parse_cid(c).digest, parse_cid(c).codec), "", t) for c, t, _ in children
    )
    block = encode_pbnode(PBNode(links, encode_unixfs(fs)))
    return cid_for_block(block, "dag-pb"), block


def test_empty_children_amplification_is_refused():
    empty = cid_of(b"")
    blocks = {empty: b""}
    cid, block = _node([(empty, 0, 0)] * 174)
    blocks[cid] = block
    for _ in range(5):  # 174**5 empty leaves if followed
        cid, block = _node([(cid, len(block), 0)] * 174)
        blocks[cid] = block
    with pytest.raises(IntegrityError, match="empty child"):
        reassemble(cid, fetcher(blocks))


def test_block_budget_bounds_tiny_leaf_dags():
    one = cid_of(b"x")
    blocks = {one: b"x"}
    cid, block = _node([(one, 1, 1)] * 174)
    blocks[cid] = block
    size = 174
    for _ in range(2):  # 174**3 one-byte leaves: more blocks than 5 MB allows
        cid, block = _node([(cid, len(block), size)] * 174)
        blocks[cid] = block
        size *= 174
    with pytest.raises(IntegrityError, match="far more blocks"):
        reassemble(cid, fetcher(blocks))
    # identical leaves (a file of zeros) are fine when the sizes are plausible
    zeros = bytes(3 * CHUNK_SIZE)
    root, zblocks = build_dag(zeros)
    assert len(zblocks) == 2 and reassemble(root, fetcher(zblocks)) == zeros
