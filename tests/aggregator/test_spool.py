"""The round's spooled batch streams the same chunks as the in-memory batch."""

from pathlib import Path

import pytest

from market.aggregator.rules import get_rule, gram
from market.aggregator.spool import SpooledBatch
from market.errors import AggregationError
from market.storage import QuantizedUpdate
from tests.aggregator.helpers import random_batch


def _spool(tmp_path, batch) -> SpooledBatch:
    spool = SpooledBatch(tmp_path, batch.d)
    for i in range(batch.n):
        spool.add(QuantizedUpdate(batch.q[i].copy(), batch.scales[i].copy(), batch.block_size))
    return spool


def test_spooled_chunks_and_results_are_the_in_memory_ones(tmp_path) -> None:
    batch = random_batch(7, 300_001, seed=4)  # several chunks and a partial last block
    spool = _spool(tmp_path, batch)
    assert (spool.n, spool.d, spool.block_size) == (batch.n, batch.d, batch.block_size)
    for (c1, q1, s1), (c2, q2, s2) in zip(spool.chunks(), batch.chunks(), strict=True):
        assert c1 == c2 and q1.tobytes() == q2.tobytes() and s1.tobytes() == s2.tobytes()
    assert gram(spool).tobytes() == gram(batch).tobytes()
    for name in ("guard", "median"):
        a = get_rule(name).aggregate(spool, ids=[f"t{i}" for i in range(7)])
        b = get_rule(name).aggregate(batch, ids=[f"t{i}" for i in range(7)])
        assert a.aggregate.tobytes() == b.aggregate.tobytes(), name


def test_a_mismatched_update_or_a_late_add_is_refused(tmp_path) -> None:
    batch = random_batch(2, 5000, seed=5)
    spool = _spool(tmp_path, batch)
    short = QuantizedUpdate(batch.q[0, :4000].copy(), batch.scales[0, :4].copy(), 1024)
    with pytest.raises(AggregationError, match="4000 values"):
        spool.add(short)
    spool.read(0, 1)
    with pytest.raises(AggregationError, match="already being read"):
        spool.add(QuantizedUpdate(batch.q[0].copy(), batch.scales[0].copy(), 1024))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AggregationError, match="at least one update"):
        SpooledBatch(tmp_path / "empty", 10).read(0, 1)


def test_memory_stays_at_a_chunk_not_the_matrix(tmp_path) -> None:
    import tracemalloc

    batch = random_batch(20, 2_000_000, seed=6)  # 40 MB of int8 values
    spool = _spool(tmp_path, batch)
    del batch
    tracemalloc.start()
    gram(spool)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 25 * 2**20, peak  # the matrix alone is 40 MB


def test_a_killed_owners_scratch_is_swept_and_live_ones_are_kept(tmp_path) -> None:
    import os
    import subprocess
    import sys

    from market.aggregator.spool import SCRATCH_PREFIX, scratch_directory

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(gone.stdout)}-abc"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}-def"
    foreign = tmp_path / f"{SCRATCH_PREFIX}notapid"
    for path in (dead, live, foreign):
        path.mkdir()
        (path / "values.int8").write_bytes(b"\1" * 10)
    with scratch_directory(tmp_path) as scratch:
        assert scratch.name.startswith(f"{SCRATCH_PREFIX}{os.getpid()}-") and scratch.is_dir()
        assert not dead.exists() and live.exists() and foreign.exists()
    assert not scratch.exists()


def test_a_round_killed_mid_spool_leaves_nothing_after_the_next_one(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    from market.aggregator.spool import SCRATCH_PREFIX, scratch_directory

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from market.aggregator.spool import scratch_directory\n"
            f"with scratch_directory(Path({str(tmp_path)!r})) as d:\n"
            "    print(d, flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    left = Path(child.stdout.readline().strip())
    assert left.is_dir()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert left.exists()  # no cleanup ran
    with scratch_directory(tmp_path):
        pass
    assert not list(tmp_path.glob(SCRATCH_PREFIX + "*"))
