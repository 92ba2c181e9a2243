import pytest
from eth_account import Account

from market.errors import ReputationError
from market.reputation.application import (
    Application,
    sign_application,
    verified_applicants,
    verify_application,
)

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ALICE = Account.from_key(b"\x11" * 32)
MALLORY = Account.from_key(b"\x22" * 32)


def test_signed_application_verifies_and_round_trips_through_json():
    app = sign_application(ALICE, 7, 3, 31337, MARKET)
    assert verify_application(app) == ALICE.address
    assert Application.from_json(app.to_json()) == app


def test_applying_in_someone_elses_name_is_refused():
    mine = sign_application(MALLORY, 7, 3, 31337, MARKET)
    forged = Application(7, 3, ALICE.address, 31337, MARKET, mine.signature)
    with pytest.raises(ReputationError, match="forged"):
        verify_application(forged)
    broken = Application(7, 3, ALICE.address, 31337, MARKET, b"\x00" * 65)
    with pytest.raises(ReputationError):
        verify_application(broken)


def test_only_applications_for_this_exact_round_count():
    good = sign_application(ALICE, 7, 3, 31337, MARKET)
    replayed = [
        sign_application(MALLORY, 7, 2, 31337, MARKET),  # another round
        sign_application(MALLORY, 8, 3, 31337, MARKET),  # another project
        sign_application(MALLORY, 7, 3, 1, MARKET),  # another chain
        sign_application(MALLORY, 7, 3, 31337, ALICE.address),  # another market
    ]
    # a signature moved onto other fields no longer matches either
    moved = Application(7, 3, MALLORY.address, 31337, MARKET, replayed[0].signature)
    accepted, dropped = verified_applicants([good, *replayed, moved, good], 7, 3, 31337, MARKET)
    assert accepted == [ALICE.address]
    assert set(dropped) == {MALLORY.address}


def test_bad_documents_raise():
    with pytest.raises(ReputationError):
        Application.from_json({"project_id": 1})
    with pytest.raises(ReputationError):
        sign_application(ALICE, -1, 0, 31337, MARKET)
