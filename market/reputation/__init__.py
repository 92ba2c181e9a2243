"""Reputation: MeritRank over the feedback graph of paid work, and round admission.

Public API (kept stable for the CLI and ``market/api``):

- ``ReputationBook(alpha=0.2, beta=0.5, gamma=0.0, seed=0, walks_per_seed=10_000)``: the
  market-wide graph + incremental MeritRank. ``.add_project(project_id, owner, policy=None,
  seeds=())``, ``.record_rewards(project_id, round_, rewards, epoch, rewards_root=None)``,
  ``.reputation(project_id) -> {address: float}``, ``.reputation_of(address, project_id)``,
  ``.admission(project_id, round_, applications, public_seed, chain_id, market) ->
  (Admission, dropped)``, ``.summary()``, ``.graph`` (``FeedbackGraph``: ``.edges()``,
  ``.reachable(seeds)``), ``.projects``, ``.log`` / ``.replay(log)``.
- ``ReputationIndexer(market, store, db, *, start_block=0, chunk=2000, confirmations=0,
  book_options=None)``: the book fed from ``ProjectCreated``/``RoundFinalized`` and the round
  reports; ``.sync() -> SyncResult``, ``.book``, ``.skipped``, ``.last_block``/``.last_hash``,
  ``.log_entries()``. Persists in ``market/db/reputation.py``; resumes after restarts and
  rolls back to the fork point after a reorg.
- Rounds: ``record_application(db, app) -> address``, ``stored_applications(db, market,
  project_id, round_)``, ``publish_admission(indexer, project_id, round_=None) ->
  AdmissionRecord`` (``.root``, ``.cid``, ``.admission``, ``.document``, ``.to_json()``),
  ``open_round_with_admission(aggregator, indexer, project_id) -> (round, tx, record)``,
  ``load_admission(store, market, project_id, round_, *, cid=None, db=None) -> (Admission,
  document)``, ``admission_proof(store, market, address, project_id, round_, *, cid=None,
  db=None) -> list[bytes]`` (checked against the on-chain root), ``next_round(market, id)``,
  ``verify_admission(market, store, project_id, round_, *, cid=None, db=None) -> {"ok", …}``
  (re-derives the list from the chain alone).
- ``Admission``: ``.admitted``, ``.established``, ``.newcomers``, ``.refused``, ``.root``,
  ``.proof_for(address)``, ``.to_json()`` / ``.from_json(doc)``.
"""

from market.reputation.admission import (
    EMPTY_ROOT,
    POLICY_NAME,
    Admission,
    AdmissionPolicy,
    admission_for,
    admit,
    lottery_key,
    normalise_address,
    policy_from_spec,
)
from market.reputation.application import (
    Application,
    sign_application,
    verified_applicants,
    verify_application,
)
from market.reputation.graph import FeedbackGraph, RewardEvent
from market.reputation.indexer import ReputationIndexer, SyncResult
from market.reputation.meritrank import MeritRank
from market.reputation.rounds import (
    ADMISSION_FORMAT,
    AdmissionRecord,
    admission_proof,
    load_admission,
    next_round,
    open_round_with_admission,
    publish_admission,
    record_application,
    stored_applications,
    verify_admission,
)
from market.reputation.service import Project, ReputationBook, epoch_of

__all__ = [
    "ADMISSION_FORMAT",
    "EMPTY_ROOT",
    "POLICY_NAME",
    "Admission",
    "AdmissionPolicy",
    "AdmissionRecord",
    "Application",
    "FeedbackGraph",
    "MeritRank",
    "Project",
    "ReputationBook",
    "ReputationIndexer",
    "RewardEvent",
    "SyncResult",
    "admission_proof",
    "admission_for",
    "admit",
    "epoch_of",
    "load_admission",
    "lottery_key",
    "next_round",
    "normalise_address",
    "open_round_with_admission",
    "policy_from_spec",
    "publish_admission",
    "record_application",
    "sign_application",
    "stored_applications",
    "verified_applicants",
    "verify_admission",
    "verify_application",
]
