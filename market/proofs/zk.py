"""A Groth16 proof that a round's scores and reward split follow from its committed sketches.

The statement (zk/circuits/score_split.circom, N slots × K sketch dimensions):

- public inputs, supplied by the contract: project id, round, the round's budget, the total
  it pays; public outputs: ``sketchCommit`` and ``scoreCommit``, Poseidon chains over the
  fixed-point sketches S and over (coefficient C, score points P, reward W) per slot;
- the scores follow from S and C under the proof-mode scoring rule
  (:func:`market.aggregator.scoring.sketch_scores`, exact integers): leave-one-out
  alignment ⌊2¹⁶ ⟨S_i, a₋ᵢ⟩ / ⌊√(‖S_i‖²‖a₋ᵢ‖²)⌋⌋ (square roots and quotients are hints the
  circuit checks: q² ≤ x ≤ q² + 2q, 0 ≤ remainder < divisor; a₋ᵢ = A − C_i S_i, or A
  itself when that is 0), raw_i = C_i · max(0, align_i − τ) (0 when ‖S_i‖² < 4: a ~zero
  sketch), and P_i within one point of 10¹² · raw_i / Σ raw (the aggregator rounds a float
  quotient; either neighbour is accepted);
- W_i = ⌊budget · P_i / Σ P⌋ exactly, and Σ W = total.

Slots are the accepted updates in the report's batch order, padded with zeros (C = 0, so
padding neither scores nor moves the aggregate). Fixed point and precision:

- S = round(s / max|s| · 2047), 12-bit signed: the round's largest sketch value maps to
  2047; an entry's rounding error is ≤ 1/4094 of the largest: cosines within 1.6·10⁻³
  of the float ones at n = 100, k = 32 with norms spread over 10× (20 random rounds);
- C = round(max(c, 0) · 2²⁰) (0 for flagged updates), Σ C < 2²² (Σ c < 4): 10⁻⁶;
- alignments in 2⁻¹⁶ units, floored; τ = 6554 · 2⁻¹⁶ ≈ 0.1000;
- points P ≤ 10¹² + 1, budget and rewards < 2⁹⁶ wei.

The sketch cosine itself estimates the update cosine only to ~1/√K (the projection's
error), which dominates everything above. What is *not* proven in-circuit: that the
sketches and coefficients match the updates and the robust rule (``market verify``
re-executes both), and that the keccak reward tree holds the proven W (the tree is keccak,
the circuit Poseidon; verify rebuilds the tree from the report's rewards).

Toolchain: circom2 (WebAssembly) + snarkjs in zk/ (``npm ci`` there); the trusted-setup
files are made once by zk/setup.sh (one is shipped in zk/setup/<circuit>/, the others go
to zk/build/). Chosen over ezkl: ezkl proves ONNX graphs of floats (a poor fit for exact
integer division, square roots and Poseidon commitments) and its Halo2 verifier costs
~2–3× the gas of Groth16.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from market.aggregator.scoring import (
    ALIGN_BITS,
    ALIGN_FLOOR_FIXED,
    SketchScores,
    sketch_scores,
)
from market.errors import ProofError

SKETCH_BITS = 12  # signed: S ∈ [−2¹¹, 2¹¹)
FIXED_BITS = 20  # coefficients C = c · 2²⁰
COEFFICIENT_BITS = 22  # Σ C < 2²²
MAX_POINTS_BITS = 41
MAX_WEI_BITS = 96
PROVE_TIMEOUT = 600


def zk_dir() -> Path:
    from market.chain.compile import repo_root

    return repo_root() / "zk"


@dataclass(frozen=True)
class Circuit:
    """One compiled score-split circuit and its trusted-setup files."""

    slots: int
    sketch_dim: int

    @property
    def name(self) -> str:
        return f"score_split_{self.slots}_{self.sketch_dim}"

    @property
    def path(self) -> Path:
        """zk/setup/<name> when shipped, else zk/build/setup/<name> (both by zk/setup.sh)."""
        shipped = zk_dir() / "setup" / self.name
        return shipped if shipped.is_dir() else zk_dir() / "build" / "setup" / self.name

    @property
    def contract(self) -> str:
        return f"ScoreSplitVerifier{self.slots}x{self.sketch_dim}"

    def require(self) -> None:
        missing = [
            f
            for f in ("circuit.wasm", "circuit.zkey", "verification_key.json")
            if not (self.path / f).is_file()
        ]
        if missing:
            raise ProofError(
                f"circuit {self.name} has no {', '.join(missing)} in {self.path}: "
                f"run zk/setup.sh {self.slots} {self.sketch_dim}"
            )
        if not (zk_dir() / "node_modules" / "snarkjs").is_dir():
            raise ProofError("snarkjs is not installed: run `npm ci` in zk/")


VERIFIER_ABI = [
    {
        "name": name,
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
    }
    for name in ("SLOTS", "SKETCH_DIM")
]


def circuit_of_verifier(w3, verifier: str) -> Circuit:  # noqa: ANN001
    """The circuit a deployed ``ScoreSplitVerifier{N}x{K}`` checks (it says its size)."""
    contract = w3.eth.contract(address=verifier, abi=VERIFIER_ABI)
    try:
        return Circuit(
            int(contract.functions.SLOTS().call()), int(contract.functions.SKETCH_DIM().call())
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not one of ours"
        raise ProofError(f"{verifier} is not a score-split verifier: {exc}") from exc


# -- fixed point -----------------------------------------------------------------------


def fixed_sketches(rows: list[list[float]]) -> list[list[int]]:
    """Sketches as integers in [−2047, 2047]: the round's largest |value| maps to 2047."""
    top = max((abs(x) for row in rows for x in row), default=0.0)
    if top == 0.0:
        return [[0 for _ in row] for row in rows]
    scale = (1 << (SKETCH_BITS - 1)) - 1
    return [[int(round(x / top * scale)) for x in row] for row in rows]


def fixed_coefficients(coefficients: list[float], flagged: list[bool]) -> list[int]:
    """Coefficients as integers: round(max(c, 0) · 2²⁰), 0 when flagged; Σ < 2²²."""
    out = [
        0 if bad else int(round(max(c, 0.0) * (1 << FIXED_BITS)))
        for c, bad in zip(coefficients, flagged, strict=True)
    ]
    if sum(out) >= 1 << COEFFICIENT_BITS:
        raise ProofError(f"coefficients sum to {sum(coefficients)}: the circuit allows < 4")
    return out


def checked_sketch_scores(s: list[list[int]], c: list[int]) -> SketchScores:
    """The proof-mode scores of fixed-point sketches ``s`` and coefficients ``c`` (what
    the circuit re-checks), once the sketches are checked to fit its 12-bit range."""
    if any(not -(1 << (SKETCH_BITS - 1)) <= x < 1 << (SKETCH_BITS - 1) for row in s for x in row):
        raise ProofError(f"sketch values exceed {SKETCH_BITS} bits")
    return sketch_scores(s, c)


@dataclass(frozen=True)
class ScoreStatement:
    """The circuit's inputs for one round, padded to the circuit's slots."""

    project_id: int
    round: int
    budget: int
    total: int
    sketches: list[list[int]]
    coefficients: list[int]
    points: list[int]
    rewards: list[int]

    def inputs(self, circuit: Circuit) -> dict:
        n, k = circuit.slots, circuit.sketch_dim
        m = len(self.points)
        if m > n:
            raise ProofError(f"{m} accepted updates exceed the circuit's {n} slots")
        if any(len(row) != k for row in self.sketches):
            raise ProofError(f"sketches must have {k} dimensions for circuit {circuit.name}")
        if self.budget >= 1 << MAX_WEI_BITS or any(p >= 1 << MAX_POINTS_BITS for p in self.points):
            raise ProofError("budget or points exceed the circuit's ranges")
        pad = n - m
        # the hints: integer square roots and shifted alignments (the circuit checks them)
        scores = checked_sketch_scores(self.sketches, self.coefficients)
        shifted = [a + (1 << ALIGN_BITS) for a in scores.align]
        above = [int(a >= ALIGN_FLOOR_FIXED) for a in scores.align]

        def column(values: list[int]) -> list[str]:
            return [str(v) for v in values] + ["0"] * pad

        return {
            "projectId": str(self.project_id),
            "round": str(self.round),
            "budget": str(self.budget),
            "total": str(self.total),
            "S": [[str(x) for x in row] for row in self.sketches] + [["0"] * k] * pad,
            "C": column(self.coefficients),
            "P": column(self.points),
            "W": column(self.rewards),
            "Q": column(scores.roots),
            "A": [str(v) for v in shifted] + [str(1 << ALIGN_BITS)] * pad,
            "G": column(above),
        }


def proof_scores(
    sketch_rows: list[list[float]], coefficients: Sequence[float], flags: Sequence[str | None]
) -> SketchScores:
    """A proof project's scores from the round's float sketches and the rule's coefficients
    and flags: what the aggregator pays and ``market verify`` recomputes, the same way."""
    fixed_c = fixed_coefficients([float(c) for c in coefficients], [f is not None for f in flags])
    return checked_sketch_scores(fixed_sketches(sketch_rows), fixed_c)


def statement_of(report) -> ScoreStatement:  # noqa: ANN001
    """The statement a round report makes (accepted updates in batch order)."""
    entries = report.accepted()
    return ScoreStatement(
        project_id=report.project_id,
        round=report.round,
        budget=report.budget_wei,
        total=report.total_wei,
        sketches=fixed_sketches([e.sketch or [] for e in entries]),
        coefficients=fixed_coefficients(
            [e.coefficient for e in entries], [e.status == "flagged" for e in entries]
        ),
        points=[e.score_points for e in entries],
        rewards=[e.reward_wei for e in entries],
    )


# -- proving and checking ----------------------------------------------------------------


@dataclass(frozen=True)
class ScoreProof:
    sketch_commit: int
    score_commit: int
    proof: list[int]  # a0 a1 b00 b01 b10 b11 c0 c1, in the verifier contract's order
    public: list[int]  # sketchCommit, scoreCommit, projectId, round, budget, total
    raw: dict  # snarkjs proof.json
    seconds: float


def _snarkjs(*args: str, cwd: Path) -> str:
    cli = zk_dir() / "node_modules" / "snarkjs" / "build" / "cli.cjs"
    proc = subprocess.run(
        ["node", str(cli), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PROVE_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0 or "ERROR" in proc.stdout or "Error" in proc.stderr:
        raise ProofError(
            f"snarkjs {args[0]} {args[1]} failed: {proc.stdout[-400:]}{proc.stderr[-400:]}"
        )
    return proc.stdout


def prove(statement: ScoreStatement, circuit: Circuit) -> ScoreProof:
    """Groth16-prove ``statement``; raises ProofError when the statement is false."""
    circuit.require()
    with tempfile.TemporaryDirectory(prefix="market-zk-") as tmp:
        work = Path(tmp)
        (work / "input.json").write_text(json.dumps(statement.inputs(circuit)))
        start = time.perf_counter()
        _snarkjs(
            "groth16",
            "fullprove",
            "input.json",
            str(circuit.path / "circuit.wasm"),
            str(circuit.path / "circuit.zkey"),
            "proof.json",
            "public.json",
            cwd=work,
        )
        seconds = time.perf_counter() - start
        raw = json.loads((work / "proof.json").read_text())
        public = [int(x) for x in json.loads((work / "public.json").read_text())]
    a, b, c = raw["pi_a"], raw["pi_b"], raw["pi_c"]
    words = [a[0], a[1], b[0][1], b[0][0], b[1][1], b[1][0], c[0], c[1]]
    return ScoreProof(public[0], public[1], [int(w) for w in words], public, raw, seconds)


def verify_offchain(proof: ScoreProof, circuit: Circuit) -> bool:
    """snarkjs's own Groth16 check of ``proof`` against its public signals."""
    circuit.require()
    with tempfile.TemporaryDirectory(prefix="market-zk-") as tmp:
        work = Path(tmp)
        (work / "proof.json").write_text(json.dumps(proof.raw))
        (work / "public.json").write_text(json.dumps([str(x) for x in proof.public]))
        try:
            out = _snarkjs(
                "groth16",
                "verify",
                str(circuit.path / "verification_key.json"),
                "public.json",
                "proof.json",
                cwd=work,
            )
        except ProofError:
            return False
    return "OK" in out


def commitments(statement: ScoreStatement, circuit: Circuit) -> tuple[int, int]:
    """(sketchCommit, scoreCommit) of ``statement``, from the circuit's own witness
    generator (no Poseidon reimplementation to drift); ProofError if the statement is false
    (the generator checks every constraint)."""
    circuit.require()
    with tempfile.TemporaryDirectory(prefix="market-zk-") as tmp:
        work = Path(tmp)
        (work / "input.json").write_text(json.dumps(statement.inputs(circuit)))
        wasm = str(circuit.path / "circuit.wasm")
        _snarkjs("wtns", "calculate", wasm, "input.json", "w.wtns", cwd=work)
        _snarkjs("wtns", "export", "json", "w.wtns", "w.json", cwd=work)
        witness = json.loads((work / "w.json").read_text())
    return int(witness[1]), int(witness[2])
