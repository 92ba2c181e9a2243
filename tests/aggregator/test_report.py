import pytest

from market.aggregator.report import RoundReport, SubmissionEntry
from market.errors import ProofError


def make_report() -> RoundReport:
    return RoundReport(
        chain_id=31337,
        contract="0x" + "11" * 20,
        project_id=1,
        round=2,
        rule="fedavg",
        rule_params={"max_samples": 10},
        global_model="bafkreiglobal",
        new_model="bafkreinew",
        budget_wei=10**18,
        total_wei=10**18 - 1,
        rewards_root="0x" + "ab" * 32,
        submissions=[
            SubmissionEntry("0x" + "22" * 20, "bafkreiu1", "accepted", None, 0.5, 5, 10**18 - 1),
            SubmissionEntry("0x" + "33" * 20, None, "rejected", "non_finite: NaN", 0.0, 0, 0),
        ],
        evidence={"weights": [0.5]},
    )


def test_report_round_trips_canonically():
    report = make_report()
    data = report.to_bytes()
    assert RoundReport.from_bytes(data) == report
    assert RoundReport.from_bytes(data).to_bytes() == data
    assert b'"reward_wei":"999999999999999999"' in data  # wei as decimal strings
    assert report.rewards() == [("0x" + "22" * 20, 10**18 - 1)]


def test_malformed_report_is_a_proof_error():
    with pytest.raises(ProofError):
        RoundReport.from_bytes(b"{}")
    with pytest.raises(ProofError):
        RoundReport.from_bytes(b"not json")
