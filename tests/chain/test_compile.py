"""Compiling through the solc-js wrapper and the artifact cache."""

from __future__ import annotations

import json
import subprocess
import time

from eth_utils import keccak

from market.chain import compile_contracts
from market.chain.compile import EVM_VERSION, WRAPPER, solc_shim


def test_wrapper_prints_version_like_native_solc():
    out = subprocess.run(
        [str(solc_shim()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("solc, the solidity compiler commandline interface\nVersion: 0.8.")
    assert "+commit." in out


def test_wrapper_rejects_unknown_options():
    proc = subprocess.run(["node", str(WRAPPER), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 1 and "unrecognised option '--bogus'" in proc.stderr


def test_wrapper_import_callback_stays_inside_allowed_paths(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "A.sol").write_text("pragma solidity ^0.8.0; contract A {}")
    source = 'pragma solidity ^0.8.0; import "lib/A.sol"; import "/etc/passwd"; contract B is A {}'
    std_in = {
        "language": "Solidity",
        "sources": {"B.sol": {"content": source}},
        "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
    }
    proc = subprocess.run(
        ["node", str(WRAPPER), "--standard-json", "--base-path", str(tmp_path)],
        input=json.dumps(std_in),
        capture_output=True,
        text=True,
        check=True,
    )
    errors = [e["message"] for e in json.loads(proc.stdout).get("errors", [])]
    assert any("/etc/passwd" in e for e in errors)  # outside base path: not read
    assert not any("lib/A.sol" in e for e in errors)


def test_artifacts_have_abi_bytecode_and_error_selectors(artifacts):
    market = artifacts["LearningMarket"]
    assert market.bytecode.startswith("0x6080") and len(market.bytecode) > 1000
    names = {item["name"] for item in market.abi if item["type"] == "function"}
    assert {"createProject", "openRound", "commitUpdate", "revealUpdate", "finalizeRound"} <= names
    assert {"claim", "expireRound", "claimExpired", "cancelProject", "refund"} <= names
    selector = "0x" + keccak(text="NotAdmitted(address)")[:4].hex()
    assert market.errors[selector] == "NotAdmitted(address)"
    assert "0x" + keccak(text="ReentrancyGuardReentrantCall()")[:4].hex() in market.errors
    assert "ReentrantClaimer" in artifacts  # test helper contracts compile too


def test_second_compile_is_served_from_cache(artifacts):
    start = time.perf_counter()
    again = compile_contracts()
    assert time.perf_counter() - start < 1.0
    assert again["LearningMarket"] == artifacts["LearningMarket"]


def test_evm_version_is_pinned():
    assert EVM_VERSION == "cancun"


def test_artifacts_are_also_keyed_by_source_path(artifacts):
    assert artifacts["contracts/LearningMarket.sol:LearningMarket"] == artifacts["LearningMarket"]
    assert "contracts/test/ReentrantClaimer.sol:ReentrantClaimer" in artifacts
