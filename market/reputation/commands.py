"""What the ``market reputation`` and reputation-aware CLI commands do, as plain functions.

Each takes the chain wrapper, the store and the database the CLI built, and returns a
JSON-able dict; ``market/cli.py`` only parses options and prints.
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from market.chain import ZERO32, LearningMarket, TxResult
from market.db import Database
from market.errors import ReputationError
from market.reputation.admission import POLICY_NAME, normalise_address, policy_from_spec
from market.reputation.application import sign_application
from market.reputation.indexer import ReputationIndexer
from market.reputation.remote import AggregatorApi
from market.reputation.rounds import (
    RoundOpener,
    load_admission,
    next_round,
    open_round_with_admission,
    published_cid,
    record_application,
)
from market.storage import Store


def parse_admission(text: str) -> dict[str, Any]:
    """``--admission``: 'open', a JSON object, or 'top_k=5,min_reputation=0.01,newcomer_quota=2'."""
    import json

    from market.reputation.admission import AdmissionPolicy

    text = text.strip()
    if text in ("", "open"):
        return {"policy": "open"}
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ReputationError(f"--admission is not JSON: {exc}") from None
    else:
        raw = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ReputationError(f"--admission item {item!r} is not key=value")
            raw[key.strip()] = value.strip()
    raw.setdefault("policy", POLICY_NAME)
    policy = policy_from_spec(raw)
    return policy.to_dict() if isinstance(policy, AdmissionPolicy) else {"policy": "open"}


def project_policy(market: LearningMarket, store: Store, project_id: int):  # noqa: ANN201
    """The project's admission policy from its spec on the store (None: open)."""
    from market.spec import ProjectSpec
    from market.storage.resolve import get_by_digest

    digest = market.get_project(project_id).spec_digest
    _, data = get_by_digest(store, digest, max_size=1024 * 1024)
    return policy_from_spec(ProjectSpec.from_bytes(data).admission)


def apply(
    market: LearningMarket,
    db: Database,
    account: LocalAccount,
    project_id: int,
    round_: int | None,
    api: AggregatorApi | None = None,
) -> dict[str, Any]:
    """Sign an application to a round (default: the next one) and store it: delivered to the
    aggregator's ``api`` first when given, else only in ``db`` (shared with the aggregator)."""
    number = next_round(market, project_id) if round_ is None else round_
    app = sign_application(account, project_id, number, int(market.w3.eth.chain_id), market.address)
    if api is not None:
        api.apply(app)  # refused or unreachable: raises, nothing recorded as delivered
    record_application(db, app, delivered_to=api.url if api else None)
    return app.to_json() | ({"delivered_to": api.url} if api else {})


def open_round(
    aggregator: RoundOpener, market: LearningMarket, store: Store, db: Database, project_id: int
) -> tuple[int, TxResult, dict[str, Any]]:
    """Open the next round with the admission its project's policy gives (zero root if open)."""
    if project_policy(market, store, project_id) is None:  # open: no index needed
        number, tx = aggregator.open_round(project_id, ZERO32)
        return number, tx, {"round": number, "root": "0x" + ZERO32.hex(), "open": True}
    indexer = ReputationIndexer(market, store, db)
    number, tx, record = open_round_with_admission(aggregator, indexer, project_id)
    return number, tx, record.to_json()


def show(
    market: LearningMarket,
    store: Store,
    db: Database,
    *,
    address: str | None = None,
    project_id: int | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Reputations after syncing the index: one address across projects, or each project's top."""
    indexer = ReputationIndexer(market, store, db)
    indexer.sync()
    book = indexer.book
    pids = sorted(book.projects) if project_id is None else [book.project(project_id).project_id]
    out: dict[str, Any] = {
        "indexed_block": indexer.last_block,
        "graph": book.summary(),
        "skipped": indexer.skipped,
    }
    if address is not None:
        addr = normalise_address(address)
        out["address"] = addr
        out["in_graph"] = addr in book.graph
        out["reputation"] = {str(p): book.reputation_of(addr, p) for p in pids}
        return out
    projects = {}
    for pid in pids:
        project = book.project(pid)
        rep = sorted(book.reputation(pid).items(), key=lambda kv: (-kv[1], kv[0]))
        projects[str(pid)] = {
            "owner": project.owner,
            "policy": project.policy.to_dict() if project.policy else {"policy": "open"},
            "top": [{"address": a, "reputation": v} for a, v in rep[:top]],
        }
    out["projects"] = projects
    return out


def admission(
    market: LearningMarket,
    store: Store,
    db: Database,
    project_id: int,
    round_: int | None = None,
    *,
    cid: str | None = None,
    preview: bool = False,
    verify: bool = False,
) -> dict[str, Any]:
    """A round's published admission (checked against the chain), or a preview of the next."""
    if preview:
        from market.reputation.rounds import compute_admission

        number = next_round(market, project_id) if round_ is None else round_
        adm, doc = compute_admission(ReputationIndexer(market, store, db), project_id, number)
        if adm is None or doc is None:
            return {"project_id": project_id, "round": number, "open": True}
        return {"preview": True, **_summary(project_id, number, doc, None)}
    number = market.get_project(project_id).rounds_opened if round_ is None else round_
    if number < 1:
        raise ReputationError(f"project {project_id} has opened no round yet; try --preview")
    root = market.get_round(project_id, number).admission_root
    if root == ZERO32:
        return {"project_id": project_id, "round": number, "open": True}
    cid = cid or published_cid(db, market, project_id, number)
    _, doc = load_admission(store, market, project_id, number, cid=cid)
    out = {"root_matches_chain": True, **_summary(project_id, number, doc, cid)}
    if verify:
        from market.reputation.rounds import verify_admission

        out["verification"] = verify_admission(market, store, project_id, number, cid=cid)
    return out


def _summary(project_id: int, number: int, doc: dict[str, Any], cid: str | None) -> dict:
    adm = doc["admission"]
    return {
        "project_id": project_id,
        "round": number,
        "open": False,
        "cid": cid,
        "root": adm["root"],
        "policy": doc["policy"],
        "seed_block": doc["seed_block"],
        "applications": len(doc["applications"]),
        "admitted": adm["admitted"],
        "established": adm["established"],
        "newcomers": adm["newcomers"],
        "refused": adm["refused"],
        "dropped": doc["dropped"],
    }
