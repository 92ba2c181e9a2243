"""Reputation: MeritRank over the feedback graph of paid work, and round admission."""

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
from market.reputation.meritrank import MeritRank
from market.reputation.service import Project, ReputationBook, epoch_of

__all__ = [
    "EMPTY_ROOT",
    "POLICY_NAME",
    "Admission",
    "AdmissionPolicy",
    "Application",
    "FeedbackGraph",
    "MeritRank",
    "Project",
    "ReputationBook",
    "RewardEvent",
    "admission_for",
    "admit",
    "epoch_of",
    "lottery_key",
    "normalise_address",
    "policy_from_spec",
    "sign_application",
    "verified_applicants",
    "verify_application",
]
