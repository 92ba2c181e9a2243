"""Sybil-tolerance experiment and update-time benchmark for MeritRank admission.

Honest world: 200 trainers; the project owner (the seed) and 19 trainers who also run
projects pay 15 trainers each per round for 10 rounds (log-normal rewards). Attacker: a
trainer who did honest work for ``k`` honest owners, the seed first — the worst case: one
attack edge straight from the project owner (its k attack edges, each a typical reward,
so the attacker is as reputable as an honest regular) — and then pays S
Sybils, who pay each other densely (a clique up to S = 100; 50 random peers each beyond,
which changes nothing for the walks: nothing leaves the region). Then 6 admission rounds of
the owner's project run: honest regulars, 3 new honest trainers a round, the attacker and
all S Sybils apply; admitted trainers are paid by the owner — Sybils too, the worst case of
an aggregator that cannot tell their work apart — and the graph is updated incrementally.

S = 2 is added to show the other end: few Sybils share the region's mass and can clear the
minimum reputation, but never more than (region reputation / minimum) of them.

Reported per S: the Sybil region's (attacker + Sybils) total reputation next to its exact
bound, the probability that a walk from the seed reaches the attacker (flat in S: it does
not depend on the region at all); Sybils admitted per round (the attacker, who did real
work, is counted apart); rounds an honest newcomer waits. A second scenario floods the
newcomer lottery with S fresh, unconnected identities: at most ``newcomer_quota`` enter per
round, but honest newcomers' odds fall as q/(S + honest) — the limit of any free-identity
system, reported as measured; and once admitted and paid (worst case above) the flood's
members become established, so admitted Sybils accumulate by at most q per round.
Last, the update time of reputation for 10k nodes / 100k edges after a new round's edges.

Run: ``python -m benchmarks.reputation [--quick]`` or ``run(quick)`` from the benchmark
runner; writes ``benchmarks/results/reputation.json`` and ``reputation.png``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils import keccak, to_checksum_address

from market.reputation import AdmissionPolicy, FeedbackGraph, MeritRank, RewardEvent, admit

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA, BETA = 0.2, 0.5
POLICY = AdmissionPolicy(top_k=30, min_reputation=1e-3, newcomer_quota=3)


def address(name: str) -> str:
    return to_checksum_address(keccak(text=name)[-20:])


def honest_history(
    rng: np.random.Generator, n_trainers: int = 200, n_owners: int = 19, rounds: int = 10
) -> tuple[str, list[str], list[RewardEvent]]:
    owner = address("owner")
    trainers = [address(f"trainer{i}") for i in range(n_trainers)]
    owners = [owner, *trainers[:n_owners]]
    events = []
    for r in range(rounds):
        for o in owners:
            pool = [t for t in trainers if t != o]
            for t in rng.choice(pool, size=15, replace=False):
                events.append(RewardEvent(o, str(t), float(rng.lognormal(0.0, 0.5)), r))
    return owner, trainers, events


def sybil_events(
    rng: np.random.Generator, owners: list[str], k: int, n_sybils: int, round_: int
) -> tuple[str, list[str], list[RewardEvent]]:
    attacker = address("attacker")
    sybils = [address(f"sybil{i}") for i in range(n_sybils)]
    events = [RewardEvent(o, attacker, 1.0, round_) for o in owners[:k]]
    events += [RewardEvent(attacker, s, 1.0, round_) for s in sybils]
    for i, s in enumerate(sybils):
        peers = (
            [p for p in sybils if p != s]
            if n_sybils <= 101
            else [sybils[j] for j in rng.choice(n_sybils, 51, replace=False) if j != i][:50]
        )
        events += [RewardEvent(s, p, 1.0, round_) for p in peers]
    return attacker, sybils, events


def reach_probability(graph: FeedbackGraph, seed: str, target: str, alpha: float) -> float:
    """Exact probability that a walk from ``seed`` ever reaches ``target`` (a linear solve).

    Nothing leads back out of a Sybil region, so its raw mass α·E[visits] is exactly this
    probability (before connectivity decay): the bound that does not grow with S.
    """
    names = graph.nodes()
    ix = {n: i for i, n in enumerate(names)}
    p = np.zeros((len(names), len(names)))
    for s, d, w in graph.edges():
        if s != target:  # absorb at the target: count first arrivals only
            p[ix[s], ix[d]] = w
    sums = p.sum(axis=1, keepdims=True)
    p = np.divide(p, sums, out=np.zeros_like(p), where=sums > 0)
    e = np.zeros(len(names))
    e[ix[seed]] = 1.0
    visits = np.linalg.solve((np.eye(len(names)) - (1 - alpha) * p).T, e)
    return float(visits[ix[target]])


def sybil_scenario(n_sybils: int, k: int, rounds: int, walks: int, fresh_flood: bool) -> dict:
    """Admission rounds of the owner's project under one attack; see the module docstring."""
    rng = np.random.default_rng(1000)  # the same honest world for every S and k
    owner, trainers, events = honest_history(rng)
    rng = np.random.default_rng(2000 + n_sybils + 7 * k)
    history_rounds = 1 + max(e.round for e in events)
    honest_owners = [owner, *trainers[:19]]
    attacker, sybils, attack = sybil_events(rng, honest_owners, k, n_sybils, history_rounds - 1)
    fresh = [address(f"fresh{i}") for i in range(n_sybils)] if fresh_flood else []
    graph = FeedbackGraph.from_events(events + attack)
    bound = reach_probability(graph, owner, attacker, ALPHA)
    region_nodes = {attacker, *sybils}
    received = sum(w for _, d, w in graph.edges() if d in region_nodes)
    naive_share = received / sum(w for _, _, w in graph.edges())
    mr = MeritRank(graph, alpha=ALPHA, beta=BETA, seed=7, walks_per_seed=walks)
    sybil_set = {*sybils, *fresh}  # the attacker itself did real work: counted apart
    waiting: dict[str, int] = {}
    waits: list[int] = []
    per_round = []
    regulars = list(rng.choice(trainers, size=60, replace=False))
    for r in range(rounds):
        epoch = history_rounds + r
        newcomers = [address(f"newcomer{epoch}-{i}") for i in range(3)]
        for n in newcomers:
            waiting[n] = epoch
        t0 = time.perf_counter()
        rep = mr.reputation(owner)
        t_rep = time.perf_counter() - t0
        applicants = [*regulars, *waiting, attacker, *sybils, *fresh]
        known = graph.reachable([owner])
        out = admit(applicants, rep, POLICY, keccak(text=f"round{epoch}"), known=known)
        region = sum(rep.get(s, 0.0) for s in [attacker, *sybils])
        raw = mr.raw_reputation(owner)
        region_raw = sum(raw.get(s, 0.0) for s in [attacker, *sybils])
        admitted_sybils = [a for a in out.admitted if a in sybil_set]
        honest_new = [a for a in out.admitted if a in waiting]
        for a in honest_new:
            waits.append(epoch - waiting.pop(a) + 1)
        per_round.append(
            {
                "round": r,
                "sybil_region_reputation": region,
                "sybil_region_raw_reputation": region_raw,
                "max_sybil_reputation": max((rep.get(s, 0.0) for s in sybils), default=0.0),
                # at most this many region members can clear the minimum, whatever S is
                "admissible_bound": int(region // POLICY.min_reputation),
                "sybils_admitted": len(admitted_sybils),
                "attacker_admitted": attacker in out.admitted,
                "sybils_admitted_as_newcomers": len(set(admitted_sybils) & set(out.newcomers)),
                "honest_newcomers_admitted": len(honest_new),
                "admitted": len(out.admitted),
                "reputation_seconds": t_rep,
                "walks_recomputed": mr.last_recomputed,
            }
        )
        mr.add_events(
            RewardEvent(owner, a, float(rng.lognormal(0.0, 0.5)), epoch) for a in out.admitted
        )
    return {
        "sybils": n_sybils,
        "attack_edges": k,
        "fresh_flood": fresh_flood,
        "rounds": per_round,
        "sybil_region_reputation_round0": per_round[0]["sybil_region_reputation"],
        "sybils_admitted_per_round": [x["sybils_admitted"] for x in per_round],
        "honest_newcomer_waits": waits,
        "honest_newcomers_still_waiting": len(waiting),
        "honest_reputation_total_round0": sum(
            v for a, v in mr.reputation(owner).items() if a not in sybil_set and a != attacker
        ),
        "region_bound": bound,
        "naive_received_share": naive_share,
    }


def update_time(n_nodes: int, n_edges: int, walks: int) -> dict[str, Any]:
    """Seconds to refresh reputation after one new round's edges (10k/100k in full mode)."""
    rng = np.random.default_rng(3)
    names = [f"n{i}" for i in range(n_nodes)]
    graph = FeedbackGraph()
    src = rng.integers(0, n_nodes, n_edges)
    dst = rng.integers(0, n_nodes, n_edges)
    for s, d, w in zip(src, dst, rng.lognormal(0, 0.5, n_edges), strict=True):
        if s != d:
            graph.add_edge(names[s], names[d], float(w), 0)
    t0 = time.perf_counter()
    mr = MeritRank(graph, alpha=ALPHA, beta=BETA, seed=1, walks_per_seed=walks)
    mr.reputation(names[0])
    t_initial = time.perf_counter() - t0
    timings = {}
    for label, owner in (("other_owner", names[1]), ("seed_owner", names[0])):
        trainers = rng.choice(n_nodes, 30, replace=False)
        t0 = time.perf_counter()
        mr.add_events(RewardEvent(owner, names[t], 1.0, 1) for t in trainers if names[t] != owner)
        rep = mr.reputation(names[0])
        timings[label] = {
            "seconds": time.perf_counter() - t0,
            "walks_recomputed": mr.last_recomputed,
            "reached_nodes": len(rep),
        }
    return {
        "nodes": n_nodes,
        "edges": graph.edge_count(),
        "walks": walks,
        "initial_seconds": t_initial,
        "new_round": timings,
    }


def run(quick: bool = False, out_dir: Path | None = RESULTS) -> dict[str, Any]:
    """Run the experiment; write reputation.json + .png in ``out_dir``; return the summary."""
    sizes = [2, 10, 100] if quick else [2, 10, 100, 1000]
    attack_edges = [1] if quick else [1, 5]
    rounds = 3 if quick else 6
    walks = 2000 if quick else 10_000
    scenarios = [
        sybil_scenario(s, k, rounds, walks, fresh_flood=False) for k in attack_edges for s in sizes
    ]
    scenarios += [sybil_scenario(s, 1, rounds, walks, fresh_flood=True) for s in sizes[1:]]
    perf = update_time(2000, 20_000, 2000) if quick else update_time(10_000, 100_000, 10_000)
    result = {
        "quick": quick,
        "parameters": {
            "alpha": ALPHA,
            "beta": BETA,
            "walks_per_seed": walks,
            "policy": {
                "top_k": POLICY.top_k,
                "min_reputation": POLICY.min_reputation,
                "newcomer_quota": POLICY.newcomer_quota,
            },
        },
        "scenarios": scenarios,
        "update_time": perf,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "reputation.json").write_text(json.dumps(result, indent=2))
        _plot(result, out_dir / "reputation.png")
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    connected = [s for s in result["scenarios"] if not s["fresh_flood"]]
    flood = [s for s in result["scenarios"] if s["fresh_flood"]]
    for k in sorted({s["attack_edges"] for s in connected}):
        rows = [s for s in connected if s["attack_edges"] == k]
        xs = [s["sybils"] for s in rows]
        axes[0].plot(
            xs, [s["sybil_region_reputation_round0"] for s in rows], "o-", label=f"MeritRank, k={k}"
        )
        axes[0].plot(
            xs,
            [s["region_bound"] for s in rows],
            "k:",
            lw=1,
            label=f"bound P(reach attacker), k={k}",
        )
        axes[0].plot(
            xs,
            [s["naive_received_share"] for s in rows],
            "x--",
            label=f"naive: share of rewards received, k={k}",
        )
        axes[1].plot(
            xs,
            [max(s["sybils_admitted_per_round"]) for s in rows],
            "o-",
            label=f"connected Sybils, k={k}",
        )
    axes[1].plot(
        [s["sybils"] for s in flood],
        [max(r["sybils_admitted_as_newcomers"] for r in s["rounds"]) for s in flood],
        "s--",
        label="fresh flood: new entries (newcomer slots)",
    )
    axes[1].plot(
        [s["sybils"] for s in flood],
        [max(s["sybils_admitted_per_round"]) for s in flood],
        "^--",
        label="fresh flood: admitted incl. earlier entrants (paid)",
    )
    quota = result["parameters"]["policy"]["newcomer_quota"]
    axes[1].axhline(quota, color="grey", ls=":", label="newcomer quota")
    for rows, label in ((connected, "connected Sybils"), (flood, "fresh flood")):
        share = [
            len(s["honest_newcomer_waits"])
            / (len(s["honest_newcomer_waits"]) + s["honest_newcomers_still_waiting"])
            for s in rows
        ]
        axes[2].plot([s["sybils"] for s in rows], share, "o-", label=label)
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="Sybils S",
        ylabel="reputation / share",
        title="Sybil region (attacker + Sybils)",
    )
    axes[1].set(
        xscale="log",
        xlabel="Sybils S",
        ylabel="max Sybils admitted in a round",
        title="Sybils admitted per round",
    )
    axes[2].set(
        xscale="log",
        xlabel="Sybils S",
        ylabel="share admitted",
        ylim=(0, 1.05),
        title="honest newcomers admitted during the run",
    )
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    summary = run(quick="--quick" in sys.argv)
    for s in summary["scenarios"]:
        print(
            f"S={s['sybils']:5d} k={s['attack_edges']} flood={s['fresh_flood']!s:5} "
            f"region={s['sybil_region_reputation_round0']:.5f} "
            f"admitted/round={s['sybils_admitted_per_round']} "
            f"newcomer waits={s['honest_newcomer_waits']} "
            f"left={s['honest_newcomers_still_waiting']}"
        )
    print(json.dumps(summary["update_time"], indent=2))
