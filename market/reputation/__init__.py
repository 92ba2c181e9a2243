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
from market.reputation.graph import FeedbackGraph, RewardEvent
from market.reputation.meritrank import MeritRank

__all__ = [
    "EMPTY_ROOT",
    "POLICY_NAME",
    "Admission",
    "AdmissionPolicy",
    "FeedbackGraph",
    "MeritRank",
    "RewardEvent",
    "admission_for",
    "admit",
    "lottery_key",
    "normalise_address",
    "policy_from_spec",
]
