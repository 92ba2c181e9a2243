"""Round overhead at scale: 100 simulated trainers, a 1M-parameter model, the real services.

One round on a fresh local anvil and embedded store, with ``market aggregator run`` doing
the aggregator's part (open, prefetch revealed updates as they are announced, validate,
aggregate, score, publish, finalize) and 100 simulated trainers (threads, each its own
funded account) committing and then publishing + revealing prepared updates. Local
training is excluded: updates are drawn before the clock starts. The windows are closed
by moving the dev chain's clock, so no time is spent waiting for them.

Reported: the round's end-to-end overhead (open + commits + reveals with uploads +
the aggregator's finalize pass), each phase, transactions per second, and the aggregator
process's peak resident memory (its VmHWM, next to the same figure once it had started and
opened the round: the cost of imports and connections). Goal: ≤ 10 s at 100 trainers.

Run: ``python -m benchmarks.round_scale [--quick]`` or ``run(quick)``; writes
``benchmarks/results/round_scale.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_utils import keccak

from market.aggregator.service import layout_of
from market.chain import AnvilNode, connect, deploy_market, dev_accounts, increase_time
from market.errors import ChainError
from market.owner import Windows, create_project
from market.storage import EmbeddedStore, encode_update
from market.storage.cid import cid_of, digest_of_cid
from market.trainer.model import ModelSpec

RESULTS = Path(__file__).parent / "results"
FULL = {"trainers": 100, "hidden": (1024, 896)}  # 64·1024 + 1024·896 + 896·10 + biases ≈ 994k
QUICK = {"trainers": 10, "hidden": (64,)}
WORKERS = 8
GOAL_SECONDS = 10.0


class _AggregatorProcess:
    """``market aggregator run --json`` left running through the round, as an operator would;
    its JSON log lines are collected as they come, its peak RSS read from /proc."""

    def __init__(self, config: Path) -> None:
        command = [sys.executable, "-c", "from market.cli import main; main()"]
        command += ["aggregator", "run", "--config", str(config), "--json"]
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.errors, text=True, bufsize=1
        )
        self.records: list[dict] = []
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._new:
                    self.records.append(json.loads(line))
                    self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def wait_for(self, event: str, timeout: float = 1800) -> dict:
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for record in self.records:
                    if record["event"] == event:
                        return record
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    self.errors.seek(0)
                    raise RuntimeError(f"aggregator never logged {event!r}: {self.errors.read()}")
                self._new.wait(min(left, 1.0))

    def peak_rss_kib(self) -> int:
        """The process's peak resident memory so far (VmHWM: since its exec, unlike
        ``ru_maxrss``, which also counts the parent's pages before exec)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> int:
        """Peak RSS in KiB, then SIGTERM (a clean stop)."""
        peak = self.peak_rss_kib()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        self.errors.close()
        return peak


def run(quick: bool = False, out_dir: Path | None = RESULTS) -> dict[str, Any]:
    """One round with simulated trainers; write round_scale.json in ``out_dir``."""
    setup = QUICK if quick else FULL
    n = setup["trainers"]
    model = ModelSpec(hidden=setup["hidden"])
    with tempfile.TemporaryDirectory(prefix="round-scale-") as tmp, AnvilNode.start() as node:
        tmp_path = Path(tmp)
        w3 = connect(node.rpc_url)
        dev = dev_accounts(w3)
        market = deploy_market(w3, dev[0])
        store = EmbeddedStore(tmp_path / "store")
        created = create_project(
            market,
            store,
            dev[1],
            aggregator=dev[2].address,
            rounds=1,
            reward_per_round_wei=10**18,
            windows=Windows(submission=3600, reveal=3600, finalize=36_000),
            name="scale",
            model=model,
            training={"epochs": 1, "lr": 0.1, "batch_size": 32},
        )
        pid, spec = created.project_id, created.spec
        layout = layout_of(spec)
        params = sum(int(np.prod(shape)) for _, shape in layout.entries)
        trainers = [Account.from_key(keccak(text=f"round-scale-{i}")) for i in range(n)]
        for t in trainers:
            w3.provider.make_request("anvil_setBalance", [t.address, hex(10**20)])

        # "local training", excluded from the timing: a common direction plus noise
        rng = np.random.default_rng(0)
        common = rng.normal(size=params).astype(np.float32) * 1e-3
        updates = []
        for i in range(n):
            flat = common + rng.normal(size=params).astype(np.float32) * 5e-4
            updates.append(encode_update(layout.unflatten(flat), layout, seed=i))
        salts = [secrets.token_bytes(32) for _ in range(n)]

        def retrying(send):  # noqa: ANN001, ANN202
            # anvil sometimes answers a concurrent eth_estimateGas with BlockOutOfRangeError
            # (before anything is sent, so retrying cannot send twice)
            for attempt in range(5):
                try:
                    return send()
                except ChainError as exc:
                    if "BlockOutOfRange" not in str(exc) or attempt == 4:
                        raise
                    time.sleep(0.05)
            return None

        def commit(i: int, number: int) -> None:
            digest = digest_of_cid(cid_of(updates[i]))
            commitment = market.compute_commitment(digest, trainers[i].address, salts[i])
            retrying(lambda: market.commit_update(trainers[i], pid, number, commitment, []))

        def reveal(i: int, number: int) -> None:
            digest = digest_of_cid(store.put(updates[i]))
            retrying(lambda: market.reveal_update(trainers[i], pid, number, digest, salts[i]))

        config = tmp_path / "aggregator.toml"
        config.write_text(
            f'rpc_url = "{node.rpc_url}"\ncontract = "{market.address}"\n'
            f'store = "embedded:{tmp_path / "store"}"\ndata_dir = "{tmp_path / "agg"}"\n'
            "account = 2\npoll_interval = 0.05\n"
        )
        phases: dict[str, float] = {}

        started = time.perf_counter()
        aggregator = _AggregatorProcess(config)
        try:
            opened = aggregator.wait_for("opened")
            phases["open"] = round(opened["ts"] - aggregator.wait_for("started")["ts"], 3)
            baseline_kib = aggregator.peak_rss_kib()  # imported, connected, round opened
            number = opened["round"]

            with ThreadPoolExecutor(WORKERS) as pool:
                t0 = time.perf_counter()
                list(pool.map(lambda i: commit(i, number), range(n)))
                phases["commits"] = round(time.perf_counter() - t0, 3)
                increase_time(w3, 3601)
                t0 = time.perf_counter()
                list(pool.map(lambda i: reveal(i, number), range(n)))
                phases["uploads_and_reveals"] = round(time.perf_counter() - t0, 3)
            closed = time.time()
            increase_time(w3, 3601)  # the reveal window closes: the aggregator takes over
            finalized = aggregator.wait_for("finalized")
            phases["finalize_after_window"] = round(finalized["ts"] - closed, 3)
            phases["finalize_only"] = finalized["seconds"]
        finally:
            peak_kib = aggregator.stop()
        wall = time.perf_counter() - started
        chain_round = market.get_round(pid, number)
        overhead = round(sum(v for k, v in phases.items() if k != "finalize_only"), 3)
        prefetched = sum(r["event"] == "update" and r.get("ok", False) for r in aggregator.records)
        txs = 2 + 2 * n
        chain_seconds = sum(phases[k] for k in ("open", "commits", "uploads_and_reveals"))
        result = {
            "quick": quick,
            "trainers": n,
            "model_parameters": params,
            "update_bytes": len(updates[0]),
            "round_overhead_s": overhead,
            "goal_s": GOAL_SECONDS,
            "meets_goal": overhead <= GOAL_SECONDS,
            "phases_s": phases,
            "transactions": txs,
            "tx_per_s": round((txs - 1) / chain_seconds, 1),
            "updates_prefetched_during_reveals": prefetched,
            "commit_tx_per_s": round(n / phases["commits"], 1),
            "aggregator_peak_rss_mib": round(peak_kib / 1024, 1),
            "aggregator_rss_after_open_mib": round(baseline_kib / 1024, 1),
            "accepted": finalized["accepted"],
            "finalized": chain_round.state.name,
            "wall_incl_process_start_s": round(wall, 3),
            "workers": WORKERS,
            "cpus": os.cpu_count(),
        }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "round_scale.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
