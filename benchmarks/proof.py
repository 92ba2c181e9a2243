"""The Groth16 score-split proof at n trainers × k sketch dimensions: cost to set up, prove,
check off chain and check on chain.

Per config: constraints, the one-time setup (compile + Groth16 setup + a phase-2
contribution, from an existing powers-of-tau file; ``zk/setup.sh N K``), the prove time
(witness + Groth16 prove, snarkjs ``groth16 fullprove``, i.e. what the aggregator runs per
round), the off-chain verify time (snarkjs), the proof's size (the 8 words the contract
takes, and snarkjs's JSON), the proving key's size, and the gas of the generated verifier's
``verifyProof`` as a transaction on anvil (21k base and calldata included; what
``finalizeRoundWithProof`` adds to a plain finalize). The statement is an honest round with
every slot filled: n updates around one direction, coefficients 1/n, budget 1 ETH.

Setups are cached in zk/build/setup/ (not committed: up to ~70 MB of proving key each) with
the time they took, so a re-run only proves. The 2¹⁷ configs need
zk/build/pot17_final.ptau (``POWER=17 zk/setup.sh 100 32`` makes it once; over an hour on 2
shared cores). Goals at n = 100, k = 32: prove ≤ 60 s on 2 cores, verify ≤ 400k gas.

Run: ``python -m benchmarks proof [--quick]`` (quick: n = 10, k = 16), or
``python -m benchmarks.proof [--no-setup]`` (only the configs set up already) →
``benchmarks/results/proof.json`` and ``proof.png``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from market.aggregator.rewards import split_rewards, to_points
from market.aggregator.scoring import score_details
from market.proofs import zk

RESULTS = Path(__file__).parent / "results"
# the goal's config first; 25 × 32 is the largest that fits a 2¹⁵ powers of tau
FULL = [(n, k) for n in (100, 50, 10) for k in (32, 16)] + [(25, 32)]
QUICK = [(10, 16)]
GOAL_PROVE_S = 60.0
GOAL_GAS = 400_000
BUDGET = 10**18


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _constraints(name: str) -> int:
    r1cs = zk.zk_dir() / "build" / f"{name}.r1cs"
    out = subprocess.run(
        ["node", "node_modules/snarkjs/build/cli.cjs", "r1cs", "info", str(r1cs)],
        cwd=zk.zk_dir(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(re.search(r"# of Constraints: (\d+)", out).group(1))


class SetupMissing(Exception):
    """The circuit has no setup and none can be made here (no large enough powers of tau)."""


def setup(circuit: zk.Circuit, allowed: bool = True) -> dict[str, Any]:
    """Run (``allowed``) or reuse the one-time setup of ``circuit``; its record (time, load,
    power)."""
    if not (circuit.path / "circuit.zkey").is_file():
        if not allowed:
            raise SetupMissing(f"not set up: zk/setup.sh {circuit.slots} {circuit.sketch_dim}")
        load = _load()
        start = time.perf_counter()
        proc = subprocess.run(
            [str(zk.zk_dir() / "setup.sh"), str(circuit.slots), str(circuit.sketch_dim)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SetupMissing(proc.stderr.strip().splitlines()[-1])
        out = proc.stdout
        record = {
            "setup_s": round(time.perf_counter() - start, 1),
            "setup_load": load,
            "ptau_power": int(re.search(r"2\^(\d+) powers of tau", out).group(1)),
        }
        (circuit.path / "setup.json").write_text(json.dumps(record))
    record_file = circuit.path / "setup.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    return {"setup_s": None, "setup_note": "shipped setup, not timed here"}


def honest_statement(n: int, k: int, seed: int = 0) -> zk.ScoreStatement:
    """A full round: n sketches around one direction, mean coefficients, honest split."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=k)
    rows = (direction + 0.7 * rng.normal(size=(n, k))).tolist()
    coef = [1.0 / n] * n
    s, c = zk.fixed_sketches(rows), zk.fixed_coefficients(coef, [False] * n)
    details = score_details(np.array(coef), [None] * n, np.eye(n), zk.sketch_gate(s, c))
    points = to_points([d.score for d in details])
    rewards = split_rewards(BUDGET, points)
    return zk.ScoreStatement(1, 1, BUDGET, sum(rewards), s, c, points, rewards)


def verifier_gas(circuit: zk.Circuit, proof: zk.ScoreProof) -> int:
    """Gas of one ``verifyProof`` transaction to the circuit's generated verifier on anvil."""
    import solcx

    from market.chain import AnvilNode, connect, deploy_contract, dev_accounts
    from market.chain.compile import SETTINGS, solc_shim

    source = circuit.path / f"{circuit.contract}.sol"
    if not source.is_file():  # shipped: the verifier lives with the contracts
        source = zk.zk_dir().parent / "contracts" / "verifiers" / f"{circuit.contract}.sol"
    settings = dict(SETTINGS, outputSelection={"v.sol": {"*": ["abi", "evm.bytecode.object"]}})
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"v.sol": {"content": source.read_text()}},
            "settings": settings,
        },
        solc_binary=solc_shim(),
    )["contracts"]["v.sol"][circuit.contract]
    with AnvilNode.start() as node:
        w3 = connect(node.rpc_url)
        account = dev_accounts(w3)[0]
        address = deploy_contract(w3, account, out["abi"], "0x" + out["evm"]["bytecode"]["object"])
        contract = w3.eth.contract(address=address, abi=out["abi"])
        p = proof.proof
        call = contract.functions.verifyProof(
            [p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], proof.public
        )
        # an explicit limit: an estimate would find the least gas that does not revert,
        # and the verifier returns false (no revert) when the pairing runs out of gas
        tx = call.build_transaction(
            {
                "from": account.address,
                "gas": 2_000_000,
                "nonce": w3.eth.get_transaction_count(account.address),
            }
        )
        signed = account.sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        if not call.call({"from": account.address, "gas": 2_000_000}):
            raise RuntimeError(f"{circuit.contract} rejects an honest proof")
        return int(receipt["gasUsed"])


def measure(n: int, k: int, setups: bool = True) -> dict[str, Any]:
    circuit = zk.Circuit(n, k)
    row: dict[str, Any] = {"n": n, "k": k}
    try:
        row.update(setup(circuit, setups))
    finally:  # setup.sh compiles first: the count is there even without a setup
        row["constraints"] = _constraints(circuit.name)
    statement = honest_statement(n, k)
    row["prove_load"] = _load()
    proof = zk.prove(statement, circuit)
    row["prove_s"] = round(proof.seconds, 2)
    start = time.perf_counter()
    if not zk.verify_offchain(proof, circuit):
        raise RuntimeError(f"snarkjs rejects an honest proof of {circuit.name}")
    row["verify_offchain_s"] = round(time.perf_counter() - start, 2)
    row["proof_calldata_bytes"] = 32 * len(proof.proof)
    row["proof_json_bytes"] = len(json.dumps(proof.raw))
    row["proving_key_mb"] = round((circuit.path / "circuit.zkey").stat().st_size / 2**20, 1)
    row["wasm_mb"] = round((circuit.path / "circuit.wasm").stat().st_size / 2**20, 1)
    row["verify_gas_tx"] = verifier_gas(circuit, proof)
    return row


def run(quick: bool = False, out_dir: Path = RESULTS, setups: bool = True) -> dict[str, Any]:
    """Measure every config; write proof.json and proof.png in ``out_dir``. ``setups=False``
    lists configs not set up yet (their constraints only) instead of setting them up."""
    rows = []
    for n, k in QUICK if quick else FULL:
        try:
            row = measure(n, k, setups)
        except SetupMissing as exc:
            row = {"n": n, "k": k, "constraints": _constraints(zk.Circuit(n, k).name)}
            row["skipped"] = str(exc)
        print(json.dumps(row), flush=True)
        rows.append(row)
    rows.sort(key=lambda r: (r["n"], r["k"]))
    goal = next((r for r in rows if (r["n"], r["k"]) == (100, 32) and "prove_s" in r), None)
    result = {
        "configs": rows,
        "cpus": os.cpu_count(),
        "goals": {"prove_s": GOAL_PROVE_S, "verify_gas": GOAL_GAS, "at": [100, 32]},
        "goals_met": None
        if goal is None
        else {"prove": goal["prove_s"] <= GOAL_PROVE_S, "gas": goal["verify_gas_tx"] <= GOAL_GAS},
        "quick": quick,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "proof.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, out_dir / "proof.png")
    return result


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for k in sorted({r["k"] for r in rows}):
        sel = [r for r in rows if r["k"] == k]
        axes[0].plot([r["n"] for r in sel], [r["constraints"] for r in sel], "o-", label=f"k = {k}")
        done = [r for r in sel if "prove_s" in r]
        axes[1].plot([r["n"] for r in done], [r["prove_s"] for r in done], "o-", label=f"k = {k}")
        gas = [r["verify_gas_tx"] for r in done]
        axes[2].plot([r["n"] for r in done], gas, "o-", label=f"k = {k}")
    axes[0].axhline(2**17, color="grey", ls="--", label="2¹⁷")
    axes[1].axhline(GOAL_PROVE_S, color="grey", ls="--", label="goal")
    axes[2].axhline(GOAL_GAS, color="grey", ls="--", label="goal")
    for ax, title in zip(
        axes, ("constraints", "prove time (s, 2 shared cores)", "verifyProof gas (tx)"), strict=True
    ):
        ax.set_title(title)
        ax.set_xlabel("trainers n")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv, setups="--no-setup" not in sys.argv)
