"""Gas of every state-changing LearningMarket function, on a real anvil (issue 6).

Whole-transaction ``gasUsed`` from the receipts (the 21k base and calldata included), for:
deploy, createProject, setProofVerifier, cancelProject, refund, openRound, commitUpdate,
revealUpdate, finalizeRound, claim (min / mean / max over all of a round's claims),
claimMany (per round, over 2, 5 and 10 rounds, against single claims from the same reward
tables), expireRound and claimExpired; and finalizeRound and the claims with n = 10, 100,
1000 trainers in one round (finalizeRound must not grow with n; ``quick``: n = 10, 100).
``finalizeRoundWithProof`` is finalizeRound plus the Groth16 verifier call: its gas is in
the proof benchmark (``benchmarks/results/proof.json``), which generates real proofs.

Gas is deterministic for given state and calldata: one run is the measurement. Trainers are
fresh keys funded with ``anvil_setBalance`` (a funded account: a claim never pays the 25k
new-account surcharge). Amounts and salts are nonzero random-looking values, so calldata
costs what it costs in production.

Run: ``python -m benchmarks gas [--quick]`` or ``python -m benchmarks.gas [--quick]``; writes
``benchmarks/results/gas.json`` and ``gas.png``.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from market.chain import (
    AnvilNode,
    LearningMarket,
    TxResult,
    compute_commitment,
    connect,
    deploy_market,
    dev_accounts,
    increase_time,
)
from market.chain.compile import EVM_VERSION, SETTINGS
from market.proofs import MerkleTree

RESULTS = Path(__file__).parent / "results"
GOALS = {"commitUpdate": 60_000, "revealUpdate": 50_000, "claim": 60_000}  # issue 6
WINDOW = 86_400
REWARD = 10**18
SCALE_FULL = (10, 100, 1000)
SCALE_QUICK = (10, 100)
CLAIM_MANY_ROUNDS = (2, 5, 10)
ORDER = (  # the life of a project
    "createProject",
    "setProofVerifier",
    "openRound",
    "commitUpdate",
    "revealUpdate",
    "finalizeRound",
    "claim",
    "expireRound",
    "claimExpired",
    "cancelProject",
    "refund",
)


def _h(label: str) -> bytes:
    return keccak(text=label)


class _Bench:
    """One deployed market, its dev accounts and the gas of every transaction it sent."""

    def __init__(self, w3: Web3, market: LearningMarket) -> None:
        self.w3, self.m = w3, market
        dev = dev_accounts(w3)
        self.owner, self.aggregator = dev[0], dev[1]
        self.gas: dict[str, list[int]] = defaultdict(list)
        market.on_tx = lambda function, result: self.gas[function].append(result.gas_used)
        self._keys = 0

    def trainers(self, n: int) -> list[LocalAccount]:
        """``n`` fresh funded accounts."""
        accounts = []
        for _ in range(n):
            self._keys += 1
            account = Account.from_key(_h(f"gas-bench-{self._keys}"))
            self.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])
            accounts.append(account)
        return accounts

    def project(self, rounds: int) -> int:
        pid, _ = self.m.create_project(
            self.owner, _h("spec"), self.aggregator.address, rounds, REWARD, *(WINDOW,) * 3
        )
        return pid

    def submit(self, pid: int, trainers: list[LocalAccount]) -> tuple[int, list[TxResult]]:
        """Open the next round; every trainer commits, then reveals. Returns the round and
        the reveal transactions; the clock ends past the reveal deadline."""
        rnd, _ = self.m.open_round(self.aggregator, pid, _h(f"model-{pid}"))
        salts = [_h(f"salt-{pid}-{rnd}-{t.address}") for t in trainers]
        digests = [_h(f"update-{pid}-{rnd}-{t.address}") for t in trainers]
        for t, d, s in zip(trainers, digests, salts, strict=True):
            self.m.commit_update(t, pid, rnd, compute_commitment(d, t.address, s))
        increase_time(self.w3, WINDOW + 1)
        reveals = [
            self.m.reveal_update(t, pid, rnd, d, s)
            for t, d, s in zip(trainers, digests, salts, strict=True)
        ]
        increase_time(self.w3, WINDOW + 1)
        return rnd, reveals

    def finalize(
        self, pid: int, rnd: int, trainers: list[LocalAccount]
    ) -> tuple[MerkleTree, dict[str, int], TxResult]:
        """Finalize with distinct nonzero amounts for every trainer (a remainder stays
        unallocated, as in a real split)."""
        share = REWARD // (len(trainers) + 1)
        amounts = {t.address: share - i for i, t in enumerate(trainers)}
        tree = MerkleTree.of_rewards(list(amounts.items()))
        total = sum(amounts.values())
        result = self.m.finalize_round(
            self.aggregator, pid, rnd, _h("new"), _h("report"), tree.root, total
        )
        return tree, amounts, result


def _stats(values: list[int]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values),
        "mean": round(statistics.fmean(values)),
        "max": max(values),
    }


def _scale(bench: _Bench, n: int) -> dict[str, Any]:
    """One round with n trainers on a fresh project: every transaction's gas."""
    m = bench.m
    trainers = bench.trainers(n)
    pid = bench.project(rounds=1)
    commits_before = len(bench.gas["commitUpdate"])
    rnd, reveals = bench.submit(pid, trainers)
    commits = bench.gas["commitUpdate"][commits_before:]
    tree, amounts, finalized = bench.finalize(pid, rnd, trainers)
    claims = [
        m.claim(t, pid, rnd, amounts[t.address], tree.proof_for(t.address)).gas_used
        for t in trainers
    ]
    return {
        "trainers": n,
        "proof_nodes": len(tree.proof_for(trainers[0].address)),
        "commitUpdate": _stats(commits),
        "revealUpdate": _stats([r.gas_used for r in reveals]),
        "finalizeRound": finalized.gas_used,
        "claim": _stats(claims),
    }


def _claim_many(bench: _Bench) -> dict[str, Any]:
    """Ten finalized rounds, four trainers revealed and paid in each (the same trees for all):
    one trainer claims every round singly, the others claim 2, 5 and 10 rounds at once."""
    m = bench.m
    rounds = max(CLAIM_MANY_ROUNDS)
    trainers = bench.trainers(len(CLAIM_MANY_ROUNDS) + 1)
    pid = bench.project(rounds=rounds)
    tables = []
    for _ in range(rounds):
        rnd, _ = bench.submit(pid, trainers)
        tree, amounts, _ = bench.finalize(pid, rnd, trainers)
        tables.append((rnd, tree, amounts))
    single_trainer = trainers[0]
    single = [
        m.claim(
            single_trainer,
            pid,
            rnd,
            amounts[single_trainer.address],
            tree.proof_for(single_trainer.address),
        ).gas_used
        for rnd, tree, amounts in tables
    ]
    out: dict[str, Any] = {"single_claim_same_tables": _stats(single), "by_rounds": {}}
    for k, t in zip(CLAIM_MANY_ROUNDS, trainers[1:], strict=True):
        claims = [
            (rnd, amounts[t.address], tree.proof_for(t.address))
            for rnd, tree, amounts in tables[:k]
        ]
        gas = m.claim_many(t, pid, claims).gas_used
        out["by_rounds"][str(k)] = {
            "rounds": k,
            "gas": gas,
            "per_round": round(gas / k),
            "saving_vs_single_per_round": round(statistics.fmean(single) - gas / k),
        }
    return out


def _lifecycle(bench: _Bench) -> None:
    """The functions not on the main path, each recorded in ``bench.gas``."""
    m = bench.m
    # setProofVerifier on a project that opens no round (it is locked once one opens)
    pid = bench.project(rounds=2)
    m.set_proof_verifier(bench.owner, pid, bench.aggregator.address)
    # expireRound and claimExpired: a round its aggregator never finalizes
    trainers = bench.trainers(10)
    pid = bench.project(rounds=2)
    rnd, _ = bench.submit(pid, trainers)
    increase_time(bench.w3, WINDOW + 1)
    m.expire_round(bench.owner, pid, rnd)
    for t in trainers:
        m.claim_expired(t, pid, rnd)
    # cancelProject and refund: the unopened round's budget and the expired remainder
    m.cancel_project(bench.owner, pid)
    m.refund(bench.owner, pid)


def run(quick: bool = False, out_dir: Path | None = RESULTS) -> dict[str, Any]:
    """Measure; write gas.json and gas.png in ``out_dir``."""
    sizes = SCALE_QUICK if quick else SCALE_FULL
    with AnvilNode.start() as node:
        w3 = connect(node.rpc_url)
        market = deploy_market(w3, dev_accounts(w3)[0])
        deploy_tx = w3.eth.get_block("latest")["transactions"][0]
        deploy_gas = int(w3.eth.get_transaction_receipt(deploy_tx)["gasUsed"])
        bench = _Bench(w3, market)
        scale = [_scale(bench, n) for n in sizes]
        claim_many = _claim_many(bench)
        _lifecycle(bench)

    functions = {"deploy": _stats([deploy_gas])}
    # every transaction of the run; claimMany is reported per number of rounds instead
    functions.update({name: _stats(bench.gas[name]) for name in ORDER})
    base = scale[0]  # the n = 10 round: what one trainer pays in a typical round
    measured = {
        "commitUpdate": base["commitUpdate"]["max"],
        "revealUpdate": base["revealUpdate"]["max"],
        "claim": max(s["claim"]["mean"] for s in scale),
    }
    finalize = {str(s["trainers"]): s["finalizeRound"] for s in scale}
    result = {
        "quick": quick,
        "evm_version": EVM_VERSION,
        "optimizer_runs": SETTINGS["optimizer"]["runs"],
        "note": "whole-transaction gasUsed (21k base + calldata included), anvil receipts",
        "functions": functions,
        "by_trainers": scale,
        "finalizeRound_by_trainers": finalize,
        # the only n-dependent part is calldata: `total`'s bytes (4 gas zero, 16 nonzero)
        "finalizeRound_spread": max(finalize.values()) - min(finalize.values()),
        "finalizeRound_constant_in_n": max(finalize.values()) - min(finalize.values()) <= 64,
        "claimMany": claim_many,
        "goals": {
            name: {"goal": goal, "measured": measured[name], "met": measured[name] <= goal}
            for name, goal in GOALS.items()
        }
        | {
            "claimMany_cheaper_per_round": {
                "met": all(
                    v["per_round"] < claim_many["single_claim_same_tables"]["min"]
                    for v in claim_many["by_rounds"].values()
                )
            }
        },
        "goal_notes": {
            "commitUpdate": "max over the n = 10 round's commits",
            "revealUpdate": "max over the n = 10 round's reveals (the first pays nothing extra)",
            "claim": "worst round mean over n in by_trainers (all of a round's claims)",
        },
        "finalizeRoundWithProof": "finalizeRound + the Groth16 verifier call: see "
        "benchmarks/results/proof.json (on-chain verify gas)",
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gas.json").write_text(json.dumps(result, indent=2) + "\n")
        _plot(result, out_dir / "gas.png")
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_f, ax_n, ax_m) = plt.subplots(
        1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [2.2, 1, 1]}
    )
    names = [n for n in result["functions"] if n != "deploy"]
    means = [result["functions"][n]["mean"] / 1000 for n in names]
    bars = ax_f.bar(names, means, color="tab:blue")
    for name, bar in zip(names, bars, strict=True):
        goal = GOALS.get(name)
        if goal is not None:
            x = bar.get_x()
            ax_f.hlines(goal / 1000, x, x + bar.get_width(), colors="tab:red", linewidth=2)
    ax_f.bar_label(bars, fmt="%.1f", fontsize=8)
    ax_f.set_ylabel("gas per transaction (thousands)")
    ax_f.set_title(
        f"LearningMarket functions, mean over the run (deploy: "
        f"{result['functions']['deploy']['mean'] / 1e6:.2f}M)\nred: issue-6 goal"
    )
    ax_f.tick_params(axis="x", rotation=45)

    scale = result["by_trainers"]
    ns = [s["trainers"] for s in scale]
    ax_n.plot(ns, [s["finalizeRound"] / 1000 for s in scale], "o-", label="finalizeRound")
    ax_n.plot(ns, [s["claim"]["mean"] / 1000 for s in scale], "s-", label="claim (mean)")
    ax_n.plot(ns, [s["revealUpdate"]["mean"] / 1000 for s in scale], "^-", label="revealUpdate")
    ax_n.set_xscale("log")
    ax_n.set_ylim(bottom=0)
    ax_n.set_xlabel("trainers in the round")
    ax_n.set_ylabel("gas (thousands)")
    ax_n.set_title("one round, n trainers")
    ax_n.legend()

    many = result["claimMany"]
    ks = [v["rounds"] for v in many["by_rounds"].values()]
    ax_m.plot(
        ks,
        [v["per_round"] / 1000 for v in many["by_rounds"].values()],
        "o-",
        label="claimMany, per round",
    )
    single = many["single_claim_same_tables"]["mean"] / 1000
    ax_m.axhline(single, color="tab:gray", linestyle="--", label="single claim")
    ax_m.set_ylim(bottom=0)
    ax_m.set_xlabel("rounds claimed in one transaction")
    ax_m.set_ylabel("gas per round (thousands)")
    ax_m.set_title("claimMany")
    ax_m.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
