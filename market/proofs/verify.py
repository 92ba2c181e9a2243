"""``market verify``: re-execute a finalized round from the chain and the store alone.

Anyone can run it; it trusts neither the aggregator nor its database. It fetches the
round's on-chain state, the report (by its on-chain digest), the spec and every revealed
update (by their on-chain digests), and re-executes the round:

- exact parts, compared bit for bit: validation outcomes and reasons, the batch order, the
  sketches (from the chain-chosen seed), the scores from the *published* coefficients and
  the exact Gram, the reward split from the published scores, the reward table's root and
  total, and the new model from the published coefficients (so its CID);
- the rule's solver, compared within ``tolerance`` (max |Δc| over coefficients, default
  1e-6): eigensolvers and iterative methods may differ in the last bits across machines
  (SPEC "Exact arithmetic"). Stateful rules (FoolsGold, SybilWall, guard) depend on the
  trainers' history, which the report does not carry: it is rebuilt from the earlier
  finalized rounds (their accepted updates, fetched by on-chain digest, aggregated in the
  published batch order) — the history an honest aggregator must have held.

Each check says what differs (which trainer, which field, by how much).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from market.aggregator.report import RoundReport
from market.aggregator.rewards import split_rewards, to_points
from market.aggregator.rules import (
    AggregationResult,
    ChunkSource,
    Rule,
    gram,
    rule_for,
    weighted_sum,
)
from market.aggregator.scoring import score_details
from market.aggregator.service import (
    fetch_valid,
    gram_digest,
    layout_of,
    load_spec,
    replayed_state,
    revealed_updates,
)
from market.aggregator.spool import SpooledBatch, scratch_directory
from market.chain import LearningMarket, RoundState
from market.errors import MarketError
from market.proofs import zk
from market.proofs.merkle import MerkleTree
from market.proofs.sketch import seed_block, sketch_commitment, sketches
from market.storage import Store, decode_model, encode_model
from market.storage.cid import cid_of, digest_of_cid
from market.storage.resolve import get_by_digest

ZERO32 = b"\0" * 32
DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str = ""


@dataclass
class Verification:
    project_id: int
    round: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks) and bool(self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def add(self, name: str, ok: bool | None, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return bool(ok)

    def to_dict(self) -> dict:
        return {
            "project_id": self.project_id,
            "round": self.round,
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
        }


def _diff_list(label: str, published: list, computed: list, names: list[str]) -> str:
    diffs = [
        f"{names[i]}: {label} published {p!r}, recomputed {c!r}"
        for i, (p, c) in enumerate(zip(published, computed, strict=True))
        if p != c
    ]
    return "; ".join(diffs[:5]) + (f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else "")


def verify_round(
    market: LearningMarket,
    store: Store,
    project_id: int,
    round_number: int,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verification:
    """Every check of one round; never raises for a mismatch (see :class:`Verification`).
    The accepted updates are spooled to a scratch directory, as the aggregator does, so
    memory stays O(n·chunk) whatever the model's size."""
    with scratch_directory() as scratch:
        return _verify_round(market, store, project_id, round_number, tolerance, scratch)


def _verify_round(
    market: LearningMarket,
    store: Store,
    project_id: int,
    round_number: int,
    tolerance: float,
    scratch: Path,
) -> Verification:
    v = Verification(project_id, round_number)
    chain_round = market.get_round(project_id, round_number)
    if not v.add(
        "round finalized",
        chain_round.state == RoundState.FINALIZED,
        f"state is {chain_round.state.name}",
    ):
        return v
    try:
        report_cid, data = get_by_digest(store, chain_round.report_digest)
        report = RoundReport.from_bytes(data)
    except MarketError as exc:
        v.add("report", False, f"cannot fetch or parse the report: {exc}")
        return v
    v.add("report", True, f"{report_cid} matches the on-chain digest")
    ident = (report.chain_id, report.contract.lower(), report.project_id, report.round)
    want = (market.w3.eth.chain_id, market.address.lower(), project_id, round_number)
    v.add("report identity", ident == want, "" if ident == want else f"{ident} != {want}")
    _check_chain_fields(v, report, chain_round)

    spec = load_spec(market, store, project_id)
    layout = layout_of(spec)
    rule = rule_for(spec.rule, spec.rule_params, spec.layout)
    ok = report.rule == rule.name and report.rule_params == rule.params
    why = f"report {report.rule} {report.rule_params}, spec {rule.name} {rule.params}"
    v.add("rule", ok, "" if ok else why)

    # -- submissions: the revealed updates, by digest, validated again
    revealed = revealed_updates(market, project_id, round_number)
    by_trainer = {s.trainer: s for s in report.submissions}
    problems = []
    if set(by_trainer) != set(revealed):
        problems.append(
            f"trainers differ: missing {sorted(set(revealed) - set(by_trainer))}, "
            f"extra {sorted(set(by_trainer) - set(revealed))}"
        )
    order: list[str] = []
    batch = SpooledBatch(scratch, layout.size)
    for trainer in sorted(revealed):
        cid, update, reason = fetch_valid(store, revealed[trainer], layout, spec)
        entry = by_trainer.get(trainer)
        if entry is None:
            continue
        published_digest = digest_of_cid(entry.update_cid) if entry.update_cid else None
        if published_digest is not None and published_digest != revealed[trainer]:
            problems.append(f"{trainer}: update {entry.update_cid} is not the one revealed ({cid})")
        if update is None and (entry.status != "rejected" or entry.reason != reason):
            problems.append(f"{trainer}: published {entry.status} {entry.reason!r}, got {reason!r}")
        if update is not None:
            if entry.status == "rejected":
                problems.append(f"{trainer}: published rejected ({entry.reason}), but it is valid")
            batch.add(update)
            order.append(trainer)
    v.add("updates and validation", not problems, "; ".join(problems))
    v.add(
        "batch order",
        order == report.batch_order,
        "" if order == report.batch_order else f"published {report.batch_order}, got {order}",
    )
    if problems or order != report.batch_order:
        return v
    _check_seed(v, market, report, chain_round.reveal_deadline)
    entries = report.accepted()
    global_bytes = get_by_digest(store, chain_round.global_model)[1]
    global_flat = layout.flatten(decode_model(global_bytes, layout)).astype(np.float64)
    if not order:
        _check_model(v, report, chain_round, _model_bytes(layout, global_flat))
        _check_rewards(v, report, chain_round, [], [])
        return v

    coef = np.array([e.coefficient for e in entries], dtype=np.float64)
    flags = [e.reason if e.status == "flagged" else None for e in entries]
    # -- the solver, within tolerance
    result = _resolve(v, market, store, report, rule, batch, tolerance, coef, flags)
    # -- exact: sketches
    rows = sketches(batch, bytes.fromhex((report.sketch_seed or "0x")[2:]), report.sketch_dim)
    published = [e.sketch for e in entries]
    bad = [order[i] for i in range(len(order)) if published[i] != rows[i].tolist()]
    v.add("sketches", not bad, f"differ for {bad}" if bad else f"{len(order)}×{rows.shape[1]}")
    commit = sketch_commitment(rows.tolist())
    v.add(
        "sketch commitment",
        commit == report.sketch_commitment,
        "" if commit == report.sketch_commitment else f"{report.sketch_commitment} != {commit}",
    )
    # -- exact: scores from the published coefficients and the exact Gram
    g = gram(batch)  # our own streaming pass, not the rule's
    digest = gram_digest(g)
    v.add(
        "gram",
        digest == report.gram_digest,
        f"{len(order)}×{len(order)} exact"
        if digest == report.gram_digest
        else f"digest {report.gram_digest} != recomputed {digest}",
    )
    sketch = None
    if int(market.proof_verifier(project_id), 16) != 0:
        sketch = zk.proof_scores(rows.tolist(), coef, flags)
    details = score_details(coef, flags, g, sketch)
    points = to_points([d.score for d in details])
    published_points = [e.score_points for e in entries]
    v.add(
        "scores",
        points == published_points,
        _diff_list("score points", published_points, points, order),
    )
    # -- exact: the reward split from the published scores
    rewards = split_rewards(report.budget_wei, published_points)
    _check_rewards(v, report, chain_round, order, rewards)
    # -- exact: the model from the published coefficients
    if result is not None and not result.linear:
        aggregate = result.aggregate
    else:
        aggregate = weighted_sum(batch, coef)
    _check_model(v, report, chain_round, _model_bytes(layout, global_flat + aggregate))
    _check_proof(v, market, report, sketch is not None)
    return v


def _resolve(
    v: Verification,
    market: LearningMarket,
    store: Store,
    report: RoundReport,
    rule: Rule,
    batch: ChunkSource,
    tolerance: float,
    coef: np.ndarray,
    flags: list[str | None],
) -> AggregationResult | None:
    """The rule solved again on the round's batch (from the rebuilt history if stateful),
    compared with the published coefficients and flags."""
    order, state, note = report.batch_order, None, ""
    if rule.stateful:
        try:
            state, replayed = replayed_state(market, store, report.project_id, report.round, rule)
        except MarketError as exc:
            v.add("rule re-solve", False, f"cannot rebuild {rule.name}'s history: {exc}")
            return None
        note = f"; history rebuilt from {len(replayed)} earlier round(s)"
    result = rule.aggregate(batch, np.ones(len(order), dtype=np.int64), state, order)
    delta = float(np.max(np.abs(result.coefficients - coef)))
    same_flags = [f is None for f in result.flags] == [f is None for f in flags]
    v.add(
        "rule re-solve",
        delta <= tolerance and same_flags,
        f"max |Δcoefficient| = {delta:.3g} (tolerance {tolerance:g}){note}"
        + ("" if same_flags else f"; flags {result.flags} vs published {flags}"),
    )
    return result


def _check_proof(v: Verification, market: LearningMarket, report: RoundReport, gated: bool) -> None:
    """The on-chain proof's commitments are the report's, and the report's statement holds."""
    if not gated:
        return
    events = market.events("RoundProven", project_id=report.project_id, round=report.round)
    if not events:
        v.add("score proof", False, "the project needs proofs but no RoundProven event exists")
        return
    on_chain = (events[-1]["args"]["sketch_commit"], events[-1]["args"]["score_commit"])
    published = (
        int(report.zk.get("sketch_commit", "0x0"), 16),
        int(report.zk.get("score_commit", "0x0"), 16),
    )
    try:
        circuit = zk.circuit_of_verifier(market.w3, market.proof_verifier(report.project_id))
        recomputed = zk.commitments(zk.statement_of(report), circuit)
    except MarketError as exc:
        v.add("score proof", False, f"the report's statement does not hold: {exc}")
        return
    ok = on_chain == published == recomputed
    v.add(
        "score proof",
        ok,
        f"commitments {hex(on_chain[0])[:12]}…, {hex(on_chain[1])[:12]}… proven on chain"
        if ok
        else f"chain {on_chain}, report {published}, recomputed {recomputed}",
    )


def _model_bytes(layout, flat: np.ndarray) -> bytes:  # noqa: ANN001
    """The model file exactly as the aggregator writes it (float32 tensors)."""
    return encode_model(layout.unflatten(flat.astype(np.float32)))


def _check_chain_fields(v: Verification, report: RoundReport, chain_round) -> None:  # noqa: ANN001
    diffs = []
    if digest_of_cid(report.global_model) != chain_round.global_model:
        diffs.append("global model")
    if report.budget_wei != chain_round.budget:
        diffs.append(f"budget {report.budget_wei} != {chain_round.budget}")
    v.add("round inputs", not diffs, "; ".join(diffs))


def _check_seed(
    v: Verification, market: LearningMarket, report: RoundReport, deadline: int
) -> None:
    number, block_hash = seed_block(market.w3, deadline)
    want = (number, "0x" + block_hash.hex())
    got = (report.sketch_seed_block, report.sketch_seed)
    v.add("sketch seed", got == want, f"block {number}" if got == want else f"{got} != {want}")


def _check_rewards(
    v: Verification, report: RoundReport, chain_round, order: list[str], rewards: list[int]
) -> None:  # noqa: ANN001
    entries = report.accepted()
    published = [e.reward_wei for e in entries]
    v.add("rewards", published == rewards, _diff_list("reward wei", published, rewards, order))
    extra = [s.trainer for s in report.submissions if s.status == "rejected" and s.reward_wei]
    leaves = [(t, r) for t, r in zip(order, rewards, strict=True) if r > 0]
    root = MerkleTree.of_rewards(sorted(leaves)).root if leaves else ZERO32
    total = sum(r for _, r in leaves)
    published_root = bytes.fromhex(report.rewards_root[2:])
    diffs = []
    if published_root != root:
        diffs.append(f"report 0x{published_root.hex()} != recomputed 0x{root.hex()}")
    if chain_round.rewards_root != root:
        diffs.append(f"chain 0x{chain_round.rewards_root.hex()} != recomputed 0x{root.hex()}")
    if extra:
        diffs.append(f"rejected trainers paid: {extra}")
    v.add("rewards root", not diffs, "; ".join(diffs) or "0x" + root.hex())
    ok = report.total_wei == total == chain_round.total
    v.add(
        "rewards total",
        ok,
        f"{total} wei"
        if ok
        else f"report {report.total_wei}, chain {chain_round.total}, recomputed {total}",
    )


def _check_model(v: Verification, report: RoundReport, chain_round, model: bytes) -> None:  # noqa: ANN001
    cid = cid_of(model)
    diffs = []
    if report.new_model != cid:
        diffs.append(f"report {report.new_model} != recomputed {cid}")
    if chain_round.new_model != digest_of_cid(cid):
        diffs.append(f"chain digest 0x{chain_round.new_model.hex()} is not {cid}")
    v.add("new model", not diffs, "; ".join(diffs) or cid)


def checks_table(v: Verification):  # noqa: ANN201
    """A Rich table of the checks: what passed, what failed and by how much."""
    from rich.table import Table

    table = Table(
        "check",
        "result",
        "detail",
        title=f"project {v.project_id} round {v.round}: {'VERIFIED' if v.ok else 'MISMATCH'}",
    )
    for c in v.checks:
        mark = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]skip[/]"}[c.ok]
        table.add_row(c.name, mark, c.detail)
    return table
