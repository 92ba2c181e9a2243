"""Hostile update files: each corpus case is rejected with its reason code, memory stays
bounded by the file's real size whatever the header declares, and (slow) a real round on
anvil with every case submitted by its own account still finalizes and pays the honest."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tracemalloc

import pytest
from eth_account import Account

from market.aggregator.service import Aggregator, fetch_valid, layout_of
from market.chain import RoundState
from market.db import Database
from market.owner import Windows, create_project
from market.storage import EmbeddedStore, ModelLayout, decode_update
from market.storage.cid import cid_of, digest_of_cid
from market.storage.tensorfile import UpdateFormatError
from market.trainer.model import ModelSpec
from tests.security.corpus import HUGE, hostile_corpus, valid_update

LAYOUT = ModelLayout((("w1", (64, 48)), ("b1", (48,)), ("w2", (48, 10)), ("b2", (10,))))
MAX_BYTES = 200_000
CORPUS = hostile_corpus(LAYOUT, MAX_BYTES)
PWNED = "/tmp/market-pwned"


def test_the_corpus_covers_the_issue_list():
    wanted = {
        "truncated_data",
        "header_length_lies",
        "overlapping_offsets",
        "header_length_huge",
        "wrong_dtype",
        "nan_scales",
        "inf_scales",
        "extra_tensor",
        "missing_tensor",
        "zip_renamed",
        "pickle_renamed",
    }
    assert wanted <= set(CORPUS)


def test_a_valid_update_decodes():
    assert decode_update(valid_update(LAYOUT), LAYOUT, max_size=MAX_BYTES).size == LAYOUT.size


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_hostile_file_is_rejected_with_its_reason_in_bounded_memory(case):
    blob, reason = CORPUS[case]
    with pytest.raises(UpdateFormatError):  # warm up: lazy imports on first error paths
        decode_update(blob, LAYOUT, max_size=MAX_BYTES)
    tracemalloc.start()
    try:
        with pytest.raises(UpdateFormatError) as info:
            decode_update(blob, LAYOUT, max_size=MAX_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == reason, str(info.value)
    # nothing allocated in proportion to a declared size (up to 2**62 bytes / 2**124
    # elements in the corpus): the peak is bounded by the real file size
    assert peak < 2_000_000 + 4 * len(blob), (case, peak, len(blob))
    assert not os.path.exists(PWNED)  # the pickle payload was never executed


def test_declared_sizes_really_are_huge():
    """The memory bound above means something: some cases declare absurd sizes."""
    header_huge = CORPUS["header_length_huge"][0]
    assert int.from_bytes(header_huge[:8], "little") == HUGE
    assert str(HUGE) in CORPUS["shape_huge"][0][:4096].decode("ascii", "replace")


@pytest.mark.slow
def test_a_round_full_of_hostile_files_still_finalizes_and_pays_the_honest(market_env, tmp_path):
    env, m = market_env, market_env.market
    store = EmbeddedStore(tmp_path / "store")
    created = create_project(
        m,
        store,
        env.owner,
        aggregator=env.aggregator.address,
        rounds=1,
        reward_per_round_wei=10**18,
        windows=Windows(submission=1000, reveal=1000, finalize=1000),
        name="hostile",
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 32},
        max_update_bytes=MAX_BYTES,
    )
    layout = layout_of(created.spec)
    corpus = hostile_corpus(layout, MAX_BYTES)
    agg = Aggregator(m, store, env.aggregator, Database.at(tmp_path))
    number, _ = agg.open_round(created.project_id)

    honest = {t.address: valid_update(layout, seed=i) for i, t in enumerate(env.trainers[:2])}
    attackers = {}
    for case in sorted(corpus):  # one fresh funded account per hostile file
        acct = Account.create()
        env.w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**18)])
        attackers[case] = acct
    submissions = [(t, honest[t.address]) for t in env.trainers[:2]]
    submissions += [(attackers[c], corpus[c][0]) for c in sorted(corpus)]
    salts = {}
    for account, blob in submissions:
        salts[account.address] = secrets.token_bytes(32)
        digest = digest_of_cid(cid_of(blob))
        commitment = m.compute_commitment(digest, account.address, salts[account.address])
        m.commit_update(account, created.project_id, number, commitment, [])
    chain_round = m.get_round(created.project_id, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    for account, blob in submissions:
        store.put(blob)
        digest = digest_of_cid(cid_of(blob))
        m.reveal_update(account, created.project_id, number, digest, salts[account.address])
    env.advance(chain_round.reveal_deadline - env.now() + 1)

    outcome = agg.finalize_round(created.project_id, number)
    assert m.get_round(created.project_id, number).state == RoundState.FINALIZED
    by_trainer = {s.trainer: s for s in outcome.report.submissions}
    for case, acct in attackers.items():
        entry = by_trainer[acct.address]
        assert entry.status == "rejected" and entry.reward_wei == 0, (case, entry)
        assert entry.reason.startswith(corpus[case][1]), (case, entry.reason)
    paid = [by_trainer[a] for a in honest]
    assert all(s.status == "accepted" and s.reward_wei > 0 for s in paid)
    assert sum(s.reward_wei for s in paid) == outcome.report.total_wei
    env.assert_escrow_balanced()
    assert not os.path.exists(PWNED)
    # the aggregator's own validation, directly: same reasons, no exception escapes
    for case, (blob, reason) in corpus.items():
        cid, update, why = fetch_valid(store, digest_of_cid(cid_of(blob)), layout, created.spec)
        assert update is None and why.startswith(reason), (case, why)


def test_deeply_nested_header_cannot_crash_the_process():
    """Regression: py_ecc (imported by the proofs) raises the recursion limit to 100000, so
    json.loads of ~99k nested brackets overflowed the C stack — SIGSEGV, killing the
    aggregator on one hostile update. The header's nesting is now bounded before parsing."""
    code = (
        "import py_ecc, sys\n"
        "from market.storage.tensorfile import UpdateFormatError, parse_header\n"
        "assert sys.getrecursionlimit() >= 100000\n"
        "text = b'[' * 99_000 + b']' * 99_000\n"
        "try:\n"
        "    parse_header(len(text).to_bytes(8, 'little') + text, 10**6)\n"
        "except UpdateFormatError as exc:\n"
        "    print(exc.reason)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.strip() == "bad_header"
