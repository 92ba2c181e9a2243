"""Compile the Solidity sources with solc-js through py-solc-x, and cache the artifacts.

No native solc can be installed on our machines, so a tiny shell shim runs
``node solc_wrapper.js``, which speaks the native command line py-solc-x drives
(``--version``, ``--standard-json``). Artifacts are cached by a hash of every source file,
the compiler and OpenZeppelin versions and the settings: a second compile is a file read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from market.chain.errors import error_selectors
from market.errors import ChainError, ConfigError

EVM_VERSION = "cancun"  # anvil 1.7.1 runs cancun and prague; cancun suits most L2s too
SETTINGS: dict = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": EVM_VERSION,
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {},  # filled per source file
}
WRAPPER = Path(__file__).with_name("solc_wrapper.js")
ARTIFACT_FORMAT = 2  # bump when the cached JSON's layout changes


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, creation bytecode (0x-hex) and error selectors."""

    abi: list
    bytecode: str
    errors: dict[str, str] = field(default_factory=dict)  # "0x1234abcd" -> "Name(types)"


def repo_root() -> Path:
    """The source tree holding contracts/ and node_modules/ (this package's checkout)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "contracts").is_dir():
        return here
    cwd = Path.cwd()
    if (cwd / "contracts").is_dir():
        return cwd
    raise ConfigError(
        "cannot find the contracts/ directory: run from the learning-market checkout "
        "(the package must be installed in editable mode)"
    )


def cache_dir() -> Path:
    """``$MARKET_CACHE_DIR`` or ``.market-cache/`` at the repository root."""
    env = os.environ.get("MARKET_CACHE_DIR")
    path = Path(env) if env else repo_root() / ".market-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in (root / "contracts").rglob("*.sol") if p.is_file())


def _package_version(root: Path, name: str) -> str:
    pkg = root / "node_modules" / name / "package.json"
    if not pkg.is_file():
        raise ConfigError(
            f"node package {name} is missing from {root / 'node_modules'}: "
            "run `make install` (npm ci) first"
        )
    return json.loads(pkg.read_text())["version"]


def _fingerprint(root: Path, sources: list[Path]) -> str:
    h = hashlib.sha256(f"format {ARTIFACT_FORMAT}\n".encode())
    for p in sources:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    h.update(_package_version(root, "solc").encode())
    h.update(_package_version(root, "@openzeppelin/contracts").encode())
    h.update(WRAPPER.read_bytes())
    h.update(json.dumps(SETTINGS, sort_keys=True).encode())
    return h.hexdigest()[:32]


def solc_shim() -> Path:
    """An executable ``solc`` that runs the node wrapper, for py-solc-x's ``solc_binary``."""
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not on PATH: install Node.js 18+ to compile the contracts")
    root = repo_root()
    body = f'#!/bin/sh\nNODE_PATH="{root / "node_modules"}" exec "{node}" "{WRAPPER}" "$@"\n'
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    shim = cache_dir() / "solc" / f"solc-{digest}"
    if not shim.exists():
        shim.parent.mkdir(parents=True, exist_ok=True)
        tmp = shim.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(body)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(shim)
    return shim


def compile_contracts(force: bool = False) -> dict[str, Artifact]:
    """Compile every contract under contracts/ (cached unless ``force``).

    Returns artifacts by ``"contracts/File.sol:Name"`` and, when the name is unique, by
    bare contract name (``"LearningMarket"``, test helpers, generated verifiers).
    """
    root = repo_root()
    sources = _sources(root)
    if not sources:
        raise ConfigError(f"no Solidity sources under {root / 'contracts'}")
    cached = cache_dir() / "artifacts" / f"{_fingerprint(root, sources)}.json"
    if cached.is_file() and not force:
        return _load(cached)

    import solcx  # imported lazily: only a cache miss pays for it

    rel = [p.relative_to(root).as_posix() for p in sources]
    settings = dict(SETTINGS)
    settings["outputSelection"] = {r: {"*": ["abi", "evm.bytecode.object"]} for r in rel}
    standard_input = {
        "language": "Solidity",
        "sources": {r: {"content": p.read_text()} for r, p in zip(rel, sources, strict=True)},
        "settings": settings,
    }
    try:
        output = solcx.compile_standard(
            standard_input,
            base_path=str(root),
            allow_paths=[str(root)],
            solc_binary=solc_shim(),
        )
    except solcx.exceptions.SolcError as exc:
        raise ChainError(f"Solidity compilation failed; fix the source:\n{exc}") from exc

    artifacts: dict[str, dict] = {}
    names: dict[str, int] = {}
    for source in rel:
        for name, out in output.get("contracts", {}).get(source, {}).items():
            bytecode = out["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # abstract contracts and interfaces
            errors = {
                "0x" + sel.hex(): f"{n}({','.join(types)})"
                for sel, (n, types) in error_selectors(out["abi"]).items()
            }
            entry = {"abi": out["abi"], "bytecode": "0x" + bytecode, "errors": errors}
            artifacts[f"{source}:{name}"] = entry
            names[name] = names.get(name, 0) + 1
            artifacts.setdefault(name, entry)
    for name, count in names.items():
        if count > 1:
            del artifacts[name]  # ambiguous: only "path:Name" keys for these
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(artifacts, sort_keys=True))
    tmp.replace(cached)
    _prune(cached.parent, keep=20)
    return _load(cached)


def _prune(directory: Path, keep: int) -> None:
    """Drop all but the ``keep`` newest cached artifact sets (old source versions)."""
    files = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)


def _load(path: Path) -> dict[str, Artifact]:
    data = json.loads(path.read_text())
    return {name: Artifact(**a) for name, a in data.items()}
