"""ezkl (Halo2/KZG) against our circom + snarkjs Groth16 on the smallest score-split case.

Issue 6 asked to measure both toolchains on a small case before choosing. The case is 8
sketches S of dimension 16 and coefficients C (8): the leave-one-out dot products
⟨S_i, A − C_i S_i⟩ with A = Σ C_j S_j, the core of our scoring rule. For ezkl it is an ONNX
graph (MatMul/Mul/Sub) with S and C "hashed" (a Poseidon hash of the inputs is public, as
our circuit's sketch commitment is) and the 8 outputs public. It leaves out what ezkl has no
exact form for (integer square roots, floored quotients, the reward split): the ezkl side
proves *less* than our circuit, so its figures are a lower bound for the full statement.

ezkl steps, each timed: ``gen_settings`` + ``calibrate_settings`` ("resources"),
``compile_circuit``, ``gen_srs`` (offline, for testing only: no ceremony), ``gen_witness``,
``setup``, ``prove``, ``verify``, ``create_evm_verifier``; then the verifier is compiled with
our solc-js toolchain, deployed on anvil and its gas measured on a ``verifyProof``
transaction. The Groth16 side is :func:`benchmarks.proof.measure` at 8 × 16 (the shipped
setup zk/setup/score_split_8_16).

ezkl is not a project dependency. It runs in its own venv (never the project's) whose
interpreter is ``$EZKL_PYTHON`` or ``.market-cache/ezkl/bin/python``, made by::

    python3 -m venv .market-cache/ezkl
    .market-cache/ezkl/bin/pip install ezkl==23.0.5 onnx

This script installs nothing: with no interpreter that imports ezkl it prints why and skips
(so ``make bench`` passes without it). Run: ``python -m benchmarks zk_choice`` →
``benchmarks/results/zk_choice.json``. Only stdlib is imported at module level: the same
file runs as ``<ezkl python> benchmarks/zk_choice.py --ezkl-side DIR`` in the ezkl venv.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SLOTS, DIM = 8, 16
SEED = 0
EZKL_TIMEOUT = 1800


# -- the ezkl side (runs inside the ezkl venv) -------------------------------------------


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an ezkl function inside an event loop: some of its bindings need one running,
    and some return awaitables."""

    async def inner() -> Any:
        out = fn(*args, **kwargs)
        return await out if inspect.isawaitable(out) else out

    return asyncio.run(inner())


def _model(path: Path) -> None:
    """The ONNX graph: out_i = Σ_d S_id · (A_d − C_i S_id), A = Cᵀ S."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ones = numpy_helper.from_array(np.ones((DIM, 1), dtype=np.float32), "ones")
    nodes = [
        helper.make_node("Transpose", ["C"], ["Ct"], perm=[1, 0]),
        helper.make_node("MatMul", ["Ct", "S"], ["A"]),  # (1, 16)
        helper.make_node("Mul", ["C", "S"], ["CS"]),  # (8, 16): C_i S_i
        helper.make_node("Sub", ["A", "CS"], ["D"]),  # leave-one-out aggregates
        helper.make_node("Mul", ["S", "D"], ["SD"]),
        helper.make_node("MatMul", ["SD", "ones"], ["out"]),  # (8, 1): row sums
    ]
    graph = helper.make_graph(
        nodes,
        "loo_dots",
        [
            helper.make_tensor_value_info("S", TensorProto.FLOAT, [SLOTS, DIM]),
            helper.make_tensor_value_info("C", TensorProto.FLOAT, [SLOTS, 1]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [SLOTS, 1])],
        initializer=[ones],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _data(path: Path) -> list[float]:
    """Sketches around one direction scaled to |s| ≤ 1 (as our fixed point does), C = 1/8;
    returns the float outputs, to check ezkl's rescaled ones against."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    s = rng.normal(size=DIM) + 0.7 * rng.normal(size=(SLOTS, DIM))
    s = s / np.abs(s).max()
    c = np.full((SLOTS, 1), 1.0 / SLOTS)
    path.write_text(json.dumps({"input_data": [s.flatten().tolist(), c.flatten().tolist()]}))
    a = c.T @ s
    return (s * (a - c * s)).sum(axis=1).tolist()


def ezkl_side(work: Path) -> dict[str, Any]:
    """Every ezkl step on the small case in ``work``; timings, sizes and the outputs."""
    import ezkl

    f = {n: str(work / n) for n in ("model.onnx", "input.json", "settings.json", "model.ezkl")}
    f |= {n: str(work / n) for n in ("kzg.srs", "witness.json", "pk.key", "vk.key", "proof.json")}
    f |= {n: str(work / n) for n in ("Verifier.sol", "Verifier.abi", "calldata.bin")}
    _model(work / "model.onnx")
    expected = _data(work / "input.json")
    row: dict[str, Any] = {"ezkl": ezkl.__version__, "seconds": {}}
    steps = row["seconds"]

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = _call(fn, *args, **kwargs)
        steps[name] = round(time.perf_counter() - start, 2)
        return out

    args = ezkl.PyRunArgs()
    args.input_visibility = "hashed"
    args.param_visibility = "fixed"
    args.output_visibility = "public"
    timed("gen_settings", ezkl.gen_settings, f["model.onnx"], f["settings.json"], py_run_args=args)
    timed(
        "calibrate_settings",
        ezkl.calibrate_settings,
        f["input.json"],
        f["model.onnx"],
        f["settings.json"],
        "resources",
    )
    timed(
        "compile_circuit",
        ezkl.compile_circuit,
        f["model.onnx"],
        f["model.ezkl"],
        f["settings.json"],
    )
    settings = json.loads(Path(f["settings.json"]).read_text())
    run_args = settings["run_args"]
    row["logrows"] = run_args["logrows"]
    row["scales"] = {"input": run_args.get("input_scale"), "param": run_args.get("param_scale")}
    row["visibility"] = {k: run_args.get(f"{k}_visibility") for k in ("input", "param", "output")}
    row["num_rows"] = settings.get("num_rows")
    row["total_assignments"] = settings.get("total_assignments")
    timed("gen_srs", ezkl.gen_srs, f["kzg.srs"], row["logrows"])
    timed("gen_witness", ezkl.gen_witness, f["input.json"], f["model.ezkl"], f["witness.json"])
    timed("setup", ezkl.setup, f["model.ezkl"], f["vk.key"], f["pk.key"], f["kzg.srs"])
    timed(
        "prove",
        ezkl.prove,
        f["witness.json"],
        f["model.ezkl"],
        f["pk.key"],
        f["proof.json"],
        f["kzg.srs"],
    )
    row["verified_offchain"] = bool(
        timed("verify", ezkl.verify, f["proof.json"], f["settings.json"], f["vk.key"], f["kzg.srs"])
    )
    try:
        timed(
            "create_evm_verifier",
            ezkl.create_evm_verifier,
            f["vk.key"],
            f["settings.json"],
            f["Verifier.sol"],
            f["Verifier.abi"],
            f["kzg.srs"],
        )
    except RuntimeError as exc:
        # ezkl writes the source, then fetches a native solc to check it: offline that
        # fails, and our solc-js compiles the source instead (the project side)
        if not (work / "Verifier.sol").is_file():
            raise
        row["create_evm_verifier_error"] = str(exc)
    calldata = _call(ezkl.encode_evm_calldata, f["proof.json"], f["calldata.bin"])
    proof = json.loads(Path(f["proof.json"]).read_text())
    witness = json.loads(Path(f["witness.json"]).read_text())
    outputs = witness.get("pretty_elements", {}).get("rescaled_outputs", [[]])
    row["outputs"] = {"float": [round(x, 5) for x in expected], "ezkl": outputs[-1]}
    raw = proof["proof"]  # a byte list in ezkl 23 (older versions: a hex string)
    row["proof_bytes"] = len(raw) if isinstance(raw, list) else len(raw.removeprefix("0x")) // 2
    row["calldata_bytes"] = len(bytes(calldata))
    row["public_instances"] = sum(len(i) for i in proof.get("instances", []))
    for key in ("pk.key", "vk.key", "kzg.srs", "model.ezkl", "Verifier.sol"):
        row[f"{key}_bytes"] = (work / key).stat().st_size
    return row


# -- the project side (runs in the project venv) -----------------------------------------


def ezkl_python() -> str | None:
    """An interpreter that imports ezkl: this one, ``$EZKL_PYTHON`` or the cache venv's."""
    candidates = [sys.executable, os.environ.get("EZKL_PYTHON", "")]
    candidates.append(str(ROOT / ".market-cache" / "ezkl" / "bin" / "python"))
    for python in filter(None, candidates):
        if not Path(python).exists():
            continue
        probe = [python, "-c", "import ezkl, onnx"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return python
    return None


def evm_gas(source: Path, calldata: bytes) -> dict[str, Any]:
    """Compile ezkl's verifier with our solc-js settings, deploy it on anvil and send one
    ``verifyProof`` transaction; gas, runtime size and whether it accepted."""
    import solcx

    from market.chain import AnvilNode, connect, deploy_contract, dev_accounts
    from market.chain.compile import SETTINGS, solc_shim

    settings = dict(SETTINGS, outputSelection={"v.sol": {"*": ["abi", "evm.bytecode.object"]}})
    start = time.perf_counter()
    compiled = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"v.sol": {"content": source.read_text()}},
            "settings": settings,
        },
        solc_binary=solc_shim(),
    )["contracts"]["v.sol"]
    compile_s = round(time.perf_counter() - start, 1)
    name, out = next((n, o) for n, o in compiled.items() if o["evm"]["bytecode"]["object"])
    with AnvilNode.start() as node:
        w3 = connect(node.rpc_url)
        account = dev_accounts(w3)[0]
        address = deploy_contract(w3, account, out["abi"], "0x" + out["evm"]["bytecode"]["object"])
        tx = {
            "from": account.address,
            "to": address,
            "data": "0x" + calldata.hex(),
            "gas": 5_000_000,  # explicit: see benchmarks.proof.verifier_gas
        }
        accepted = int.from_bytes(w3.eth.call(tx)[-32:], "big") == 1
        tx |= {
            "nonce": w3.eth.get_transaction_count(account.address),
            "chainId": w3.eth.chain_id,
            "gasPrice": w3.eth.gas_price,
        }
        signed = account.sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        runtime = len(w3.eth.get_code(address))
    return {
        "contract": name,
        "solc_compile_s": compile_s,
        "runtime_bytes": runtime,
        "accepted": accepted,
        "verify_gas_tx": int(receipt["gasUsed"]),
        "status": int(receipt["status"]),
    }


def _ezkl(python: str) -> dict[str, Any]:
    """The ezkl side in its venv, then its verifier's gas on anvil; failures recorded."""
    with tempfile.TemporaryDirectory(prefix="market-ezkl-") as tmp:
        work = Path(tmp)
        proc = subprocess.run(
            [python, __file__, "--ezkl-side", str(work)],
            capture_output=True,
            text=True,
            timeout=EZKL_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            return {"failed": "ezkl steps", "error": (proc.stdout + proc.stderr)[-3000:]}
        row = json.loads((work / "result.json").read_text())
        try:
            row["evm"] = evm_gas(work / "Verifier.sol", (work / "calldata.bin").read_bytes())
        except Exception as exc:  # noqa: BLE001 - a failure to deploy is itself a result
            row["evm"] = {"failed": f"{type(exc).__name__}: {str(exc)[-2000:]}"}
    return row


def run(quick: bool = False, out_dir: Path = RESULTS) -> dict[str, Any] | None:
    """Measure both on 8 × 16 and write zk_choice.json (``quick`` changes nothing: the case
    is already the smallest); skip, writing nothing, when no interpreter has ezkl."""
    python = ezkl_python()
    if python is None:
        print(
            "zk_choice: skipped: ezkl is not importable (it is not a project dependency); "
            "make its own venv: python3 -m venv .market-cache/ezkl && "
            ".market-cache/ezkl/bin/pip install ezkl==23.0.5 onnx",
            flush=True,
        )
        return None
    from benchmarks.proof import measure

    result = {
        "case": {"slots": SLOTS, "sketch_dim": DIM, "seed": SEED},
        "cpus": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
        "ezkl": _ezkl(python),
        "groth16": measure(SLOTS, DIM),
        "quick": quick,
    }
    print(json.dumps(result, indent=2), flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "zk_choice.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ezkl-side"]:
        target = Path(sys.argv[2])
        (target / "result.json").write_text(json.dumps(ezkl_side(target)))
    else:
        run(quick="--quick" in sys.argv)
