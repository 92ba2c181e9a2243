"""Robustness under attack: digits, 20 trainers, Dirichlet label skew, 30% Byzantine.

Setup (identical for every rule, ours and ByzFL's): MLP 64-64-10, 1 local epoch of SGD
(lr 0.1, batch 32), 50 rounds, updates quantised to int8 blocks with stochastic rounding
(what trainers send), α ∈ {0.1, 1.0}. Trainers 14–19 are Byzantine in attack rows; the
model-poisoning attackers are omniscient (they see this round's honest updates). Each attack
runs twice: identical Byzantine updates, and with independent per-client noise (RMS 0.5×
the attack vector's). Sybil rows: 19 honest trainers and one attacker who trains on
label-flipped data and submits through k = 10 or 30 identities (near-identical copies).
Attackers claim the median honest sample count (it only matters to FedAvg).

``no_attack_other_seeds`` (full run): guard (and guard+head) vs FedAvg with nobody attacking
on seeds 1–3 at α ∈ {0.05, 0.1, 1.0}, since honest heterogeneity is where a robust default
silently costs accuracy and it varies with the split. ``label_flip_other_seeds``: guard and
guard+head vs honest-only FedAvg under label flipping (± noise) on seeds 1–3 at α ∈ {0.1,
1.0}: how far the head check carries varies with the split.

Columns: final accuracy (mean of the last 5 rounds' test accuracy, to damp round-to-round
noise), honest-only FedAvg (FedAvg over the honest trainers alone), clean FedAvg (all 20
trainers honest), attackers' share of the total |coefficient| mass (mean over rounds; our
rules only — ByzFL returns a vector, not weights).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fl_sim import MLP, Split, load_digits_split
from market.aggregator import attacks
from market.aggregator.rules import QuantizedBatch, get_rule

RESULTS = Path(__file__).parent / "results"
N_TRAINERS, N_BYZ = 20, 6
ATTACKS = ["sign_flip", "alie", "ipm", "gaussian", "label_flip", "min_max"]

# Our rules as a project spec would name them (f from byzantine_fraction 0.3 → 6 of 20).
OURS: dict[str, tuple[str, dict[str, Any]]] = {
    "fedavg": ("fedavg", {}),
    "median": ("median", {}),
    "trimmed_mean": ("trimmed_mean", {}),
    "krum": ("krum", {}),
    "multi_krum": ("multi_krum", {}),
    "geometric_median": ("geometric_median", {}),
    "centered_clipping": ("centered_clipping", {}),
    "foolsgold": ("foolsgold", {}),
    "flag": ("flag", {}),
    "sybilwall": ("sybilwall", {}),
    "guard": ("guard", {}),
    # Opt-in: guard plus the label-consistency check on the classifier head (the spec's
    # "head": "auto" resolves to these offsets).
    "guard+head": ("guard", {"head": MLP().head}),
}


def byzfl_rules(f: int) -> dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]]:
    """Factories (one fresh instance per run: CenteredClipping keeps state across calls)."""
    from tests.aggregator.byzfl_oracle import load_byzfl

    b = load_byzfl()
    if b is None:
        return {}

    def nnm_then(agg: Any) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
        return lambda: lambda u: agg(b.NNM(f)(u))

    return {
        "byzfl:median": lambda: b.Median(),
        "byzfl:trmean": lambda: b.TrMean(f),
        "byzfl:krum": lambda: b.Krum(f),
        "byzfl:multikrum": lambda: b.MultiKrum(f),
        "byzfl:geomed": lambda: b.GeometricMedian(),
        "byzfl:cc": lambda: b.CenteredClipping(),
        "byzfl:nnm+trmean": nnm_then(b.TrMean(f)),
    }


@dataclass(frozen=True)
class Row:
    alpha: float
    attack: str  # "none", an ATTACKS name, or "sybil"
    noise: bool = False
    sybils: int = 0


def _setting(split: Split, row: Row) -> tuple[list[int], list[int], list[np.ndarray]]:
    """Honest trainer indices, attacker trainer indices, per-trainer labels to train on."""
    n = len(split.ys)
    ys = list(split.ys)
    if row.attack == "none":
        return list(range(n)), [], ys
    if row.attack == "sybil":
        ys[n - 1] = attacks.label_flip(split.xs[n - 1], ys[n - 1], split.num_classes)[1]
        return list(range(n - 1)), [n - 1], ys
    byz = list(range(n - N_BYZ, n))
    if row.attack == "label_flip":
        for t in byz:
            ys[t] = attacks.label_flip(split.xs[t], ys[t], split.num_classes)[1]
    return list(range(n - N_BYZ)), byz, ys


def simulate(
    split: Split,
    row: Row,
    aggregate: Callable[[QuantizedBatch, np.ndarray, list[str]], tuple[np.ndarray, Any]],
    rounds: int,
    seed: int,
    include_byzantine: bool = True,
) -> tuple[float, float | None]:
    """Train ``rounds`` rounds; (final accuracy, attackers' mean weight share or None)."""
    mlp = MLP()
    w = mlp.init(seed)
    rng = np.random.default_rng(seed + 1)
    honest, byz, ys = _setting(split, row)
    trainers = honest + (byz if row.attack in ("label_flip", "sybil") else [])
    counts_all = np.array([len(y) for y in split.ys])
    claim = int(np.median(counts_all[honest]))
    accs, shares = [], []
    for _ in range(rounds):
        deltas = mlp.train(w, [split.xs[t] for t in trainers], [ys[t] for t in trainers], rng)
        h = deltas[: len(honest)]
        bad = np.zeros((0, mlp.d))
        if include_byzantine and byz:
            if row.attack == "sybil":
                bad = attacks.sybil_clones(deltas[len(honest)], row.sybils, rng)
            elif row.attack == "label_flip":
                bad = deltas[len(honest) :]
            else:
                bad = attacks.byzantine_updates(row.attack, h, len(byz), rng)
            if row.noise:
                bad = attacks.independent_noise(bad, rng, 0.5)
        u = np.vstack([h, bad])
        ids = [f"h{t}" for t in honest] + [f"b{i}" for i in range(len(bad))]
        counts = np.concatenate([counts_all[honest], np.full(len(bad), claim)]).astype(np.int64)
        batch = QuantizedBatch.from_dense(u, rng=rng)
        agg, coef = aggregate(batch, counts, ids)
        if coef is not None and len(bad):
            mass = np.abs(coef)
            shares.append(float(mass[len(h) :].sum() / max(mass.sum(), 1e-300)))
        w = (w.astype(np.float64) + agg).astype(np.float32)
        accs.append(mlp.accuracy(w, split.x_test, split.y_test))
    share = float(np.mean(shares)) if shares else (0.0 if coef is not None else None)
    return float(np.mean(accs[-5:])), share


def ours(name: str, params: dict[str, Any]):
    rule = get_rule(name, **params)
    state: dict[str, Any] = {"s": None}

    def aggregate(batch: QuantizedBatch, counts: np.ndarray, ids: list[str]):
        res = rule.aggregate(batch, counts, state["s"], ids)
        state["s"] = res.state
        return res.aggregate, res.coefficients

    return aggregate


def theirs(factory: Callable[[], Callable[[np.ndarray], np.ndarray]]):
    fn = factory()

    def aggregate(batch: QuantizedBatch, counts: np.ndarray, ids: list[str]):
        return np.asarray(fn(batch.dense()), dtype=np.float64), None

    return aggregate


def rows_for(quick: bool) -> list[Row]:
    alphas = [0.1] if quick else [0.1, 1.0]
    atk = ["sign_flip", "alie", "gaussian"] if quick else ATTACKS
    rows: list[Row] = []
    for a in alphas:
        rows.append(Row(a, "none"))
        for name in atk:
            rows.append(Row(a, name))
            if not quick:
                rows.append(Row(a, name, noise=True))
        for k in [10] if quick else [10, 30]:
            rows.append(Row(a, "sybil", sybils=k))
    return rows


def reference_row(row: Row) -> Row:
    """The row with the same honest-only FedAvg run: it depends only on who trains (the
    shared random stream follows the trainers), not on the attack vectors, which it drops.
    Model-poisoning attackers do not train, so all their rows share one honest-only run."""
    if row.attack in ("none", "label_flip", "sybil"):
        return Row(row.alpha, row.attack)
    return Row(row.alpha, "sign_flip")


def honest_only_fedavg(row: Row, seed: int, rounds: int) -> float:
    """FedAvg over the row's honest trainers alone (for "none": every trainer, clean)."""
    split = load_digits_split(N_TRAINERS, row.alpha, seed)
    return simulate(split, row, ours("fedavg", {}), rounds, seed, False)[0]


def row_results(
    row: Row, quick: bool, seed: int, rounds: int, clean: float, honest_only: float
) -> list[dict[str, Any]]:
    """Every rule on one row (ours and ByzFL's), with that row's two FedAvg references."""
    theirs_rules = byzfl_rules(N_BYZ)
    our_rules = OURS
    if quick:
        our_rules = {
            k: OURS[k] for k in ("fedavg", "median", "flag", "sybilwall", "guard", "guard+head")
        }
        theirs_rules = {
            k: v for k, v in theirs_rules.items() if k in ("byzfl:trmean", "byzfl:krum")
        }
    split = load_digits_split(N_TRAINERS, row.alpha, seed)
    byz = 0 if row.attack in ("none", "sybil") else N_BYZ
    n_total = N_TRAINERS - 1 + row.sybils if row.attack == "sybil" else N_TRAINERS
    out = []
    for label, agg in [
        *[(k, ours(*v)) for k, v in our_rules.items()],
        *[(k, theirs(f)) for k, f in theirs_rules.items()],
    ]:
        acc, share = simulate(split, row, agg, rounds, seed)
        out.append(
            {
                "rule": label,
                "attack": row.attack,
                "noise": row.noise,
                "alpha": row.alpha,
                "byzantine_fraction": round(byz / n_total, 3) if byz else 0.0,
                "sybils": row.sybils,
                "final_accuracy": round(acc, 4),
                "honest_only_fedavg": round(honest_only, 4),
                "clean_fedavg": round(clean, 4),
                "attacker_weight_share": None if share is None else round(share, 4),
            }
        )
    return out


# Extra seeds for the no-attack check (the grid runs one seed): honest heterogeneity is
# where a robust default rule silently costs accuracy, and it varies with the split.
CLEAN_SEEDS = (1, 2, 3)
CLEAN_ALPHAS = (0.05, 0.1, 1.0)


def clean_gap(alpha: float, seed: int, rounds: int) -> dict[str, Any]:
    """guard (and guard+head) against FedAvg with every trainer honest, on one split and
    seed."""
    split = load_digits_split(N_TRAINERS, alpha, seed)
    row = Row(alpha, "none")
    guard = simulate(split, row, ours("guard", {}), rounds, seed)[0]
    fedavg = simulate(split, row, ours("fedavg", {}), rounds, seed)[0]
    with_head = simulate(split, row, ours(*OURS["guard+head"]), rounds, seed)[0]
    return {
        "alpha": alpha,
        "seed": seed,
        "guard": round(guard, 4),
        "fedavg": round(fedavg, 4),
        "gap": round(fedavg - guard, 4),
        # The opt-in head check's cost when nobody attacks (why it is not the default).
        "guard+head": round(with_head, 4),
        "gap_guard+head": round(fedavg - with_head, 4),
    }


def flip_gap(alpha: float, seed: int, noise: bool, rounds: int) -> dict[str, Any]:
    """guard and guard+head against honest-only FedAvg under label flipping, on one split
    and seed (the grid's seed is one draw; how far the head check carries varies)."""
    split = load_digits_split(N_TRAINERS, alpha, seed)
    row = Row(alpha, "label_flip", noise=noise)
    honest = simulate(split, row, ours("fedavg", {}), rounds, seed, False)[0]
    out: dict[str, Any] = {"alpha": alpha, "seed": seed, "noise": noise}
    for label in ("guard", "guard+head"):
        acc, share = simulate(split, row, ours(*OURS[label]), rounds, seed)
        out[label] = round(acc, 4)
        out[f"share_{label}"] = round(share or 0.0, 4)
    out["honest_only_fedavg"] = round(honest, 4)
    out["gap_guard+head"] = round(honest - out["guard+head"], 4)
    return out


def run(quick: bool = False, seed: int = 0, workers: int | None = None) -> dict[str, Any]:
    """The grid, rows spread over ``workers`` processes (default: one per core). Every
    simulation is seeded on its own, so the numbers do not depend on the worker count."""
    rounds = 15 if quick else 50
    started = time.perf_counter()
    rows = rows_for(quick)
    workers = max(1, min(workers or os.cpu_count() or 1, len(rows)))
    # spawn, not fork: the parent may hold torch/BLAS threads (aggregation_speed ran first).
    context = multiprocessing.get_context("spawn")
    out_rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # The FedAvg references first, each once (many rows share one).
        refs = {reference_row(r) for r in rows} | {Row(r.alpha, "none") for r in rows}
        ref_jobs = {ref: pool.submit(honest_only_fedavg, ref, seed, rounds) for ref in refs}
        ref = {key: job.result() for key, job in ref_jobs.items()}
        jobs = [
            pool.submit(
                row_results,
                row,
                quick,
                seed,
                rounds,
                ref[Row(row.alpha, "none")],
                ref[reference_row(row)],
            )
            for row in rows
        ]
        clean_jobs = (
            []
            if quick
            else [pool.submit(clean_gap, a, s, rounds) for a in CLEAN_ALPHAS for s in CLEAN_SEEDS]
        )
        flip_jobs = (
            []
            if quick
            else [
                pool.submit(flip_gap, a, s, noise, rounds)
                for a in (0.1, 1.0)
                for s in CLEAN_SEEDS
                for noise in (False, True)
            ]
        )
        for row, job in zip(rows, jobs, strict=True):
            out_rows.extend(job.result())
            print(f"robustness: {row} done at {time.perf_counter() - started:.0f}s", flush=True)
        clean_seeds = [job.result() for job in clean_jobs]
        flip_seeds = [job.result() for job in flip_jobs]
    result = {
        "benchmark": "robustness",
        "quick": quick,
        "rounds": rounds,
        "trainers": N_TRAINERS,
        "byzantine": N_BYZ,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": out_rows,
        "summary": summarise(out_rows),
        "no_attack_other_seeds": clean_seeds,
        "label_flip_other_seeds": flip_seeds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "robustness.json").write_text(json.dumps(result, indent=1))
    plot(out_rows, RESULTS / "robustness.png")
    return result


def _row_key(r: dict[str, Any]) -> tuple:
    return (r["alpha"], r["attack"], r["noise"], r["sybils"])


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rule: worst gap to honest-only FedAvg over the attack rows; best rules per row."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_rule.setdefault(r["rule"], []).append(r)
    worst = {}
    for rule, rs in by_rule.items():
        attacked = [r for r in rs if r["attack"] != "none"]
        gaps = [r["honest_only_fedavg"] - r["final_accuracy"] for r in attacked]
        clean_gap = [r["clean_fedavg"] - r["final_accuracy"] for r in rs if r["attack"] == "none"]
        worst[rule] = {
            "worst_gap_to_honest_only": round(max(gaps), 4) if gaps else None,
            "worst_row": _row_key(attacked[int(np.argmax(gaps))]) if gaps else None,
            "no_attack_gap_to_fedavg": round(max(clean_gap), 4) if clean_gap else None,
            "max_attacker_share": max(
                (r["attacker_weight_share"] or 0.0 for r in attacked), default=None
            ),
        }
    return worst


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({_row_key(r) for r in rows}, key=str)
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    acc = np.full((len(rules), len(keys)), np.nan)
    for r in rows:
        acc[rules.index(r["rule"]), keys.index(_row_key(r))] = r["final_accuracy"]
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(keys)), 0.4 * len(rules) + 2))
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(rules)), rules, fontsize=7)
    labels = [f"α={a} {t}{'+noise' if nz else ''}{f' k={s}' if s else ''}" for a, t, nz, s in keys]
    ax.set_xticks(range(len(keys)), labels, rotation=70, ha="right", fontsize=6)
    for i in range(len(rules)):
        for j in range(len(keys)):
            if not np.isnan(acc[i, j]):
                ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=5, color="w")
    fig.colorbar(im, ax=ax, label="final test accuracy")
    ax.set_title("Robustness on digits (20 trainers, 30% Byzantine / Sybil clones)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
