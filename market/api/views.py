"""Read models for the dashboard: projects, rounds, submissions — JSON-able dicts.

Chain state is the truth for money and phase; the round report (fetched by the digest the
chain holds) for who contributed what. Wei amounts are decimal strings, as in the report.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from market.chain import ZERO32, Project, Round, RoundState, chain_time
from market.errors import ConfigError, MarketError, StorageError
from market.spec import ProjectSpec
from market.storage.cid import cid_from_digest

from .state import Services


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def phase(r: Round, now: int) -> str:
    """open (commit window) / reveal / submitted (awaiting finalization) / finalized / expired."""
    if r.state == RoundState.FINALIZED:
        return "finalized"
    if r.state == RoundState.EXPIRED:
        return "expired"
    if r.state == RoundState.NONE:
        return "unopened"
    if now < r.commit_deadline:
        return "open"
    if now < r.reveal_deadline:
        return "reveal"
    if now < r.finalize_deadline:
        return "submitted"
    return "expirable"


def get_project(svc: Services, project_id: int) -> Project:
    count = svc.market.project_count()
    if not 1 <= project_id <= count:
        raise LookupError(f"no project {project_id}: projects are numbered 1..{count}")
    return svc.market.get_project(project_id)


def project_spec(svc: Services, project: Project) -> tuple[str | None, ProjectSpec | None]:
    try:
        return svc.spec(project.spec_digest)
    except (StorageError, ConfigError):
        return None, None  # spec not in this store: the page says so


def escrow_of(svc: Services, project: Project) -> int:
    """Wei the contract still holds for this project."""
    owed = project.refundable
    if not project.cancelled:
        owed += (project.rounds - project.rounds_opened) * project.reward_per_round
    for number in range(1, project.rounds_opened + 1):
        owed += svc.market.get_round(project.project_id, number).unpaid
    return owed


def project_summary(svc: Services, project: Project) -> dict[str, Any]:
    spec_cid, spec = project_spec(svc, project)
    return {
        "id": project.project_id,
        "name": spec.name if spec else None,
        "owner": project.owner,
        "aggregator": project.aggregator,
        "spec_cid": spec_cid or cid_from_digest(project.spec_digest, "raw"),
        "spec_available": spec is not None,
        "rule": spec.rule if spec else None,
        "rule_params": spec.rule_params if spec else None,
        "admission": spec.admission if spec else None,
        "rounds": project.rounds,
        "rounds_opened": project.rounds_opened,
        "cancelled": project.cancelled,
        "reward_per_round_wei": str(project.reward_per_round),
        "budget_wei": str(project.rounds * project.reward_per_round),
        "escrow_wei": str(escrow_of(svc, project)),
        "refundable_wei": str(project.refundable),
        "windows": {
            "submission": project.submission_window,
            "reveal": project.reveal_window,
            "finalize": project.finalize_window,
        },
    }


def list_projects(svc: Services) -> list[dict[str, Any]]:
    return [
        project_summary(svc, svc.market.get_project(i))
        for i in range(1, svc.market.project_count() + 1)
    ]


def round_summary(
    svc: Services, project: Project, spec: ProjectSpec | None, number: int, now: int
) -> dict[str, Any]:
    r = svc.market.get_round(project.project_id, number)
    out: dict[str, Any] = {
        "round": number,
        "phase": phase(r, now),
        "commit_deadline": r.commit_deadline,
        "reveal_deadline": r.reveal_deadline,
        "finalize_deadline": r.finalize_deadline,
        "commits": r.commits,
        "reveals": r.reveals,
        "budget_wei": str(r.budget),
        "total_wei": str(r.total),
        "claimed_wei": str(r.claimed),
        "global_model_cid": None if r.global_model == ZERO32 else cid_in_store(svc, r.global_model),
        "admission_root": hex32(r.admission_root),
        "model_cid": None,
        "report_cid": None,
        "accuracy": None,
    }
    if r.state == RoundState.FINALIZED:
        out["model_cid"] = cid_in_store(svc, r.new_model)
        try:
            out["report_cid"], _ = svc.report(r.report_digest)
        except MarketError:
            out["report_cid"] = None
        if spec is not None:
            out["accuracy"] = svc.accuracy(r.new_model, spec)
    return out


def cid_in_store(svc: Services, digest: bytes) -> str:
    """The CID naming a digest in our store: dag-pb for multi-chunk blobs, else raw."""
    from market.storage.resolve import cid_candidates

    dag_pb, raw = cid_candidates(digest)
    try:
        return dag_pb if svc.store.has(dag_pb) else raw
    except MarketError:
        return raw


def project_detail(svc: Services, project_id: int) -> dict[str, Any]:
    project = get_project(svc, project_id)
    summary = project_summary(svc, project)
    _, spec = project_spec(svc, project)
    now = chain_time(svc.w3)
    rounds = [
        round_summary(svc, project, spec, n, now) for n in range(1, project.rounds_opened + 1)
    ]
    for n in range(project.rounds_opened + 1, project.rounds + 1):
        rounds.append({"round": n, "phase": "cancelled" if project.cancelled else "unopened"})
    initial = None
    if spec is not None:
        from market.storage.cid import digest_of_cid

        initial = svc.accuracy(digest_of_cid(spec.initial_model), spec)
    return {**summary, "chain_time": now, "initial_accuracy": initial, "round_list": rounds}


def round_detail(svc: Services, project_id: int, number: int) -> dict[str, Any]:
    """One round: chain state, the report's submissions with claims, the rule's evidence."""
    project = get_project(svc, project_id)
    if not 1 <= number <= project.rounds_opened:
        raise LookupError(
            f"round {number} of project {project_id} has not been opened "
            f"({project.rounds_opened} opened so far)"
        )
    _, spec = project_spec(svc, project)
    now = chain_time(svc.w3)
    out = round_summary(svc, project, spec, number, now)
    r = svc.market.get_round(project_id, number)
    committed = {
        ev["args"]["trainer"]: ev
        for ev in svc.market.events("UpdateCommitted", project_id=project_id, round=number)
    }
    revealed = {
        ev["args"]["trainer"]: ev["args"]["update_digest"]
        for ev in svc.market.events("UpdateRevealed", project_id=project_id, round=number)
    }
    rows: list[dict[str, Any]] = []
    evidence: dict[str, Any] = {}
    report_ok = False
    if r.state == RoundState.FINALIZED:
        try:
            _, report = svc.report(r.report_digest)
            report_ok = True
            evidence = report.evidence
            out["rule"], out["rule_params"] = report.rule, report.rule_params
            for s in report.submissions:
                rows.append(
                    {
                        "trainer": s.trainer,
                        "update_cid": s.update_cid,
                        "status": s.status,
                        "validation": "valid" if s.status != "rejected" else "invalid",
                        "reason": s.reason,
                        "coefficient": s.coefficient,
                        "score_points": s.score_points,
                        "reward_wei": str(s.reward_wei),
                        "claimed": claimed_or_none(svc, project_id, number, s.trainer),
                    }
                )
        except MarketError as exc:
            out["report_error"] = str(exc)
    if not report_ok:
        rows = []
        for trainer in sorted(committed):
            digest = revealed.get(trainer)
            rows.append(
                {
                    "trainer": trainer,
                    "update_cid": None if digest is None else cid_in_store(svc, digest),
                    "status": "revealed" if digest is not None else "committed",
                    "validation": None,
                    "reason": None,
                    "coefficient": None,
                    "score_points": None,
                    "reward_wei": None,
                    "claimed": False,
                }
            )
    out["submissions"] = rows
    out["evidence"] = evidence
    return out


def claimed_or_none(svc: Services, project_id: int, number: int, trainer: str) -> bool | None:
    """Whether a reward was claimed; None (shown as '?') when the node fails twice to answer."""
    for attempt in range(2):
        try:
            return svc.market.is_claimed(project_id, number, trainer)
        except Exception:  # noqa: BLE001 - a transient RPC error must not hide the report
            if attempt == 0:
                time.sleep(0.2)
    return None


def similarity(svc: Services, project_id: int, number: int) -> dict[str, Any]:
    """Cosine similarity between the round's revealed updates (SybilWall-style evidence)."""
    project = get_project(svc, project_id)
    _, spec = project_spec(svc, project)
    if spec is None:
        raise LookupError(f"the spec of project {project_id} is not in this store")
    events = svc.market.events("UpdateRevealed", project_id=project_id, round=number)
    labels, vectors = [], []
    for ev in sorted(events, key=lambda e: e["args"]["trainer"]):
        vec = svc.update_vector(ev["args"]["update_digest"], spec)
        if vec is not None:
            labels.append(ev["args"]["trainer"])
            vectors.append(vec)
    if not vectors:
        return {"trainers": [], "matrix": []}
    u = np.stack(vectors)
    norms = np.linalg.norm(u, axis=1)
    norms[norms == 0] = 1.0
    cos = (u @ u.T) / np.outer(norms, norms)
    return {"trainers": labels, "matrix": np.round(cos, 4).tolist()}
