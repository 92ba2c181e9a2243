"""Dashboard API against a real anvil and the embedded store (one finalized round per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from market.api import create_app
from market.api.devstack import DevStack, simulate_round
from market.chain import dev_accounts

pytestmark = pytest.mark.slow

SPEC = {"name": "digits api", "hidden": [16], "rule": "fedavg"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack.start(tmp_path_factory.mktemp("api"), serve=False) as s:
        yield s


@pytest.fixture(scope="module")
def client(stack: DevStack) -> TestClient:
    return TestClient(create_app(stack.settings()))


@pytest.fixture(scope="module")
def owner(stack: DevStack) -> str:
    return dev_accounts(stack.market.w3)[1].address


def create(client: TestClient, owner: str, **overrides) -> dict:
    spec = client.post("/api/specs", json={**SPEC, **overrides.pop("spec", {})})
    assert spec.status_code == 200, spec.text
    body = {
        "account": owner,
        "spec_cid": spec.json()["spec_cid"],
        "rounds": 2,
        "reward_per_round_eth": "0.5",
        "submission_window": 60,
        "reveal_window": 60,
        "finalize_window": 600,
        **overrides,
    }
    return client.post("/api/projects", json=body)


@pytest.fixture(scope="module")
def finished(stack: DevStack, client: TestClient, owner: str) -> dict:
    """A project created through the API whose first round ran with 3 trainers, 2 claims."""
    created = create(client, owner)
    assert created.status_code == 200, created.text
    pid = created.json()["project_id"]
    outcome = simulate_round(stack.market, stack.data_dir, pid, trainers=3, claims=2)
    return {"project_id": pid, "tx": created.json(), **outcome}


def test_health_reports_the_dev_chain(client: TestClient, stack: DevStack) -> None:
    body = client.get("/api/health").json()
    assert body["ok"] and body["chain_id"] == 31337 and body["dev_keys"]
    assert body["contract"] == stack.market.address


def test_rules_come_from_the_registry_and_every_default_is_accepted(client: TestClient) -> None:
    from market.aggregator.rules import RULES, get_rule

    rules = client.get("/api/rules").json()
    assert [r["name"] for r in rules] == list(RULES)
    by_name = {r["name"]: r for r in rules}
    assert by_name["guard"]["stateful"] and not by_name["krum"]["stateful"]
    for r in rules:  # the listed defaults are exactly what each rule accepts
        assert get_rule(r["name"], **r["parameters"]).params == r["parameters"]


def test_dev_accounts_listed_with_roles(client: TestClient) -> None:
    accounts = client.get("/api/accounts").json()
    assert len(accounts) == 10 and accounts[1]["role"] == "owner"
    assert int(accounts[1]["balance_wei"]) > 0


def test_create_project_records_a_mined_transaction(client: TestClient, finished: dict) -> None:
    tx = finished["tx"]
    assert tx["status"] == "mined" and tx["tx_hash"].startswith("0x")
    assert any(t["tx_hash"] == tx["tx_hash"] for t in client.get("/api/txs").json())


def test_project_detail_has_timeline_escrow_and_accuracy(
    client: TestClient, finished: dict
) -> None:
    p = client.get(f"/api/projects/{finished['project_id']}").json()
    assert p["name"] == "digits api" and p["rule"] == "fedavg"
    assert [r["phase"] for r in p["round_list"]] == ["finalized", "unopened"]
    first = p["round_list"][0]
    assert first["model_cid"] == finished["model_cid"]
    assert first["report_cid"] == finished["report_cid"]
    assert 0.0 <= first["accuracy"] <= 1.0 and p["initial_accuracy"] is not None
    # escrow = the unopened round + round 1's unclaimed reward + the refundable remainder
    unclaimed = int(first["total_wei"]) - int(first["claimed_wei"])
    assert int(p["escrow_wei"]) == 5 * 10**17 + unclaimed + int(p["refundable_wei"])


def test_round_submissions_come_from_the_report_and_claims_from_chain(
    client: TestClient, finished: dict
) -> None:
    r = client.get(f"/api/projects/{finished['project_id']}/rounds/1").json()
    rows = {s["trainer"]: s for s in r["submissions"]}
    assert set(rows) == set(finished["trainers"])
    assert {t for t, s in rows.items() if s["claimed"]} == set(finished["claimed"])
    assert all(s["validation"] == "valid" and s["update_cid"] for s in rows.values())
    assert sum(int(s["reward_wei"]) for s in rows.values()) == int(r["total_wei"])
    assert r["rule"] == "fedavg"


def test_similarity_matrix_is_square_with_unit_diagonal(client: TestClient, finished: dict) -> None:
    sim = client.get(f"/api/projects/{finished['project_id']}/rounds/1/similarity").json()
    n = len(sim["trainers"])
    assert n == 3 and all(abs(sim["matrix"][i][i] - 1.0) < 1e-3 for i in range(n))


def test_downloads_return_the_stored_bytes(client: TestClient, finished: dict) -> None:
    report = client.get(f"/api/blobs/{finished['report_cid']}?name=report.json")
    assert report.status_code == 200 and report.json()["format"] == "market-report/1"
    assert "report.json" in report.headers["content-disposition"]
    model = client.get(f"/api/blobs/{finished['model_cid']}")
    assert model.status_code == 200 and len(model.content) > 1000


def test_reputation_graph_and_admission(client: TestClient, finished: dict) -> None:
    graph = client.get("/api/graph").json()
    assert graph["summary"]["rounds"] >= 1 and graph["edges"]
    trainer = finished["trainers"][0]
    rep = client.get(f"/api/reputation/{trainer}").json()
    assert rep["in_graph"] and rep["per_project"][str(finished["project_id"])] > 0
    adm = client.get(f"/api/projects/{finished['project_id']}/admission/1").json()
    assert adm["open"] and {a["address"] for a in adm["admitted"]} == set(finished["trainers"])


def test_bad_inputs_are_clear_400s_and_create_nothing(client: TestClient, owner: str) -> None:
    before = len(client.get("/api/projects").json())
    bad_rule = client.post("/api/specs", json={**SPEC, "rule": "nope"})
    assert bad_rule.status_code == 400 and "unknown aggregation rule" in bad_rule.json()["error"]
    bad_reward = create(client, owner, reward_per_round_eth="-1")
    assert bad_reward.status_code == 400 and "positive" in bad_reward.json()["error"]
    bad_window = create(client, owner, submission_window=0)
    assert bad_window.status_code == 422
    bad_admission = client.post("/api/specs", json={**SPEC, "admission": {"policy": "meritrank"}})
    assert bad_admission.status_code == 400 and "top_k" in bad_admission.json()["error"]
    assert len(client.get("/api/projects").json()) == before


def test_unknown_things_are_404(client: TestClient) -> None:
    assert client.get("/api/projects/999").status_code == 404
    assert client.get("/api/blobs/bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").status_code in (400, 404)


def test_revert_is_409_with_the_error_name(client: TestClient, finished: dict) -> None:
    outsider = dev_accounts(client.app.state.services.w3)[9].address
    r = client.post(f"/api/projects/{finished['project_id']}/cancel", json={"account": outsider})
    assert r.status_code == 409 and r.json()["revert"] == "NotOwner"
    assert client.get("/api/txs").json()[0]["status"] == "reverted"


def test_events_stream_sends_blocks(client: TestClient) -> None:
    with client.stream("GET", "/api/events?limit=1") as response:
        text = "".join(response.iter_text())
    assert "event: block" in text and '"block":' in text


def test_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<script" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_no_deployment_is_a_clear_error(tmp_path: Path, stack: DevStack) -> None:
    from market.api import Settings

    app = create_app(Settings(rpc_url=stack.node.rpc_url, data_dir=tmp_path))
    body = TestClient(app).get("/api/health").json()
    assert not body["ok"] and "no LearningMarket deployment" in body["error"]


def test_verify_endpoint_re_executes_the_round(client: TestClient, finished: dict) -> None:
    r = client.post(f"/api/projects/{finished['project_id']}/rounds/1/verify")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["result"]["checks"]
    assert all(c["ok"] is not False for c in body["result"]["checks"])
    link = client.get(f"/api/projects/{finished['project_id']}/rounds/1/verify")  # page's link
    assert link.status_code == 200 and link.json()["ok"] is True


def test_wallet_gets_an_unsigned_create_transaction(
    client: TestClient, finished: dict, owner: str
) -> None:
    spec = client.post("/api/specs", json=SPEC).json()["spec_cid"]
    body = {
        "account": owner,
        "spec_cid": spec,
        "rounds": 2,
        "reward_per_round_eth": "0.25",
        "submission_window": 60,
        "reveal_window": 60,
        "finalize_window": 600,
        "aggregator": owner,
    }
    tx = client.post("/api/projects/prepare", json=body).json()
    assert (
        tx["value"] == hex(5 * 10**17) and tx["data"].startswith("0x") and tx["chainId"] == "0x7a69"
    )


def test_meritrank_admission_shows_admitted_and_refused(
    stack: DevStack, client: TestClient, finished: dict, owner: str
) -> None:
    """Same owner, second project with top-2 + 1 newcomer: established trainers compete on
    the reputation the first project's rewards gave them; newcomers draw the quota."""
    from market.aggregator.service import Aggregator
    from market.db import Database
    from market.reputation.commands import apply, open_round

    policy = {"policy": "meritrank", "top_k": 2, "newcomer_quota": 1}
    created = create(client, owner, spec={"admission": policy})
    assert created.status_code == 200, created.text
    pid = created.json()["project_id"]
    accounts = dev_accounts(stack.market.w3)
    db = Database.at(stack.data_dir)
    applicants = [a for a in accounts if a.address in finished["trainers"]] + accounts[7:9]
    for account in applicants:
        apply(stack.market, db, account, pid, None)
    aggregator = Aggregator(stack.market, client.app.state.services.store, accounts[2], db)
    number, _, _ = open_round(aggregator, stack.market, aggregator.store, db, pid)

    adm = client.get(f"/api/projects/{pid}/admission/{number}").json()
    assert not adm["open"] and adm["root_matches_chain"]
    assert len(adm["decided"]) == 3 and len(adm["newcomers"]) == 1
    reasons = sorted(adm["refused"].values())
    assert len(reasons) == 2
    assert "newcomer quota" in reasons[0] and "not in the top 2" in reasons[1]
    assert adm["policy"]["top_k"] == 2
