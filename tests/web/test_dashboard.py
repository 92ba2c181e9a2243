"""The owner dashboard in a real browser against a live stack.

An owner creates a project through the page with a dev account; simulated trainers (real
TrainerClient and Aggregator code) run a round in the test; the page, without a reload,
shows the finalized round: accuracy, submissions with claims, rewards, evidence.
"""

from __future__ import annotations

import httpx
import pytest

from market.api.devstack import DevStack, simulate_round
from market.chain import dev_accounts

pytestmark = pytest.mark.slow


def projects(stack: DevStack) -> list[dict]:
    return httpx.get(f"{stack.url}/api/projects", timeout=30).json()


def open_page(page, stack: DevStack, route: str = "") -> None:
    page.goto(f"{stack.url}/{route}")
    page.wait_for_selector("main[data-ready='1']")


@pytest.fixture(scope="module")
def finished(stack: DevStack) -> dict:
    """A project (made through the API) whose round 1 ran with 3 trainers, 2 of them claimed."""
    owner = dev_accounts(stack.market.w3)[1].address
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        spec = client.post("/api/specs", json={"name": "fixture", "hidden": [16]}).json()
        created = client.post(
            "/api/projects",
            json={
                "account": owner,
                "spec_cid": spec["spec_cid"],
                "rounds": 2,
                "reward_per_round_eth": "1",
                "submission_window": 60,
                "reveal_window": 60,
                "finalize_window": 600,
            },
        ).json()
    pid = created["project_id"]
    return {
        "project_id": pid,
        **simulate_round(stack.market, stack.data_dir, pid, trainers=3, claims=2),
    }


def test_owner_creates_a_project_and_watches_a_round_finish_live(page, stack: DevStack) -> None:
    open_page(page, stack, "#/new")
    assert "owner" in page.locator("[data-testid=account-picker] option:checked").inner_text()
    page.fill("input[name=name]", "browser project")
    page.fill("input[name=hidden]", "16")
    # The rule list is the server's registry; guard is preselected; the hint shows defaults.
    page.wait_for_selector("select[name=rule] option[value=guard]", state="attached")
    assert page.input_value("select[name=rule]") == "guard"
    page.select_option("select[name=rule]", "trimmed_mean")
    assert "byzantine_fraction=0.3" in page.locator("[data-testid=rule-hint]").inner_text()
    page.select_option("select[name=rule]", "sybilwall")
    page.click("[data-testid=publish-spec]")
    cid = page.locator("[data-testid=published-cid]").inner_text()
    assert cid.startswith("baf")
    assert page.input_value("[data-testid=spec-cid-input]") == cid
    page.fill("input[name=rounds]", "2")
    page.fill("input[name=reward]", "0.5")
    page.click("[data-testid=create-project]")
    tx_hash = page.locator("[data-testid=tx-hash]").inner_text()
    assert tx_hash.startswith("0x") and len(tx_hash) == 66
    page.click("[data-testid=new-project-link]")
    page.wait_for_selector("[data-testid=project-view]")
    assert "browser project" in page.locator("h2").inner_text()
    assert page.locator("[data-testid=escrow]").inner_text().endswith("1 ETH")
    assert page.get_attribute("[data-testid=round-1]", "data-phase") == "unopened"

    pid = int(page.url.rsplit("/", 1)[-1])
    outcome = simulate_round(stack.market, stack.data_dir, pid, trainers=4, claims=2, sybils=2)

    # No reload: the server-sent events make the page re-render.
    page.wait_for_selector("[data-testid=round-1][data-phase=finalized]", timeout=30_000)
    # Renders follow the chain's events; wait for the one after the last claim.
    page.wait_for_function(
        """n => {
          const rows = [...document.querySelectorAll('[data-testid=submissions] tr[data-trainer]')];
          return rows.filter(r => r.classList.contains('status-flagged')).length === 2
            && rows.filter(r => r.cells[6].textContent === 'yes').length === n;
        }""",
        arg=len(outcome["claimed"]),
    )
    rows = page.locator("[data-testid=submissions] tbody tr[data-trainer]")
    assert rows.count() == 4
    claimed = {
        rows.nth(i).get_attribute("data-trainer")
        for i in range(4)
        if rows.nth(i).locator("td").nth(6).inner_text() == "yes"
    }
    assert claimed == set(outcome["claimed"])
    # The two Sybil clones are flagged by SybilWall, with the reason, and earn nothing.
    flagged = page.locator("[data-testid=submissions] tr.status-flagged")
    assert flagged.count() == 2
    assert "similarity weight 0" in flagged.first.locator(".reason").inner_text()
    assert {flagged.nth(i).get_attribute("data-trainer") for i in range(2)} == set(
        outcome["trainers"][2:]
    )
    assert "%" in page.locator("[data-testid=accuracy-chart] svg").inner_html()
    assert page.locator("[data-testid=reward-chart] rect").count() == 4
    assert page.locator("[data-testid=heatmap] rect").count() == 16
    report_href = page.get_attribute("[data-testid=download-report]", "href")
    report = httpx.get(stack.url + report_href, timeout=30).json()
    assert report["format"] == "market-report/1" and report["project_id"] == pid


def test_bad_input_shows_a_clear_error_and_creates_nothing(page, stack: DevStack) -> None:
    before = len(projects(stack))
    open_page(page, stack, "#/new")
    page.fill("input[name=rule_params]", "{not json")
    page.click("[data-testid=publish-spec]")
    assert "rule parameters must be JSON" in page.locator("[data-testid=error]").inner_text()
    page.select_option("select[name=rule]", "krum")
    page.fill("input[name=rule_params]", '{"nonsense": 1}')
    page.click("[data-testid=publish-spec]")
    page.wait_for_selector("[data-testid=spec-cid] [data-testid=error]")
    page.fill("input[name=rule_params]", '{"f": 1}')
    page.click("[data-testid=publish-spec]")
    page.wait_for_selector("[data-testid=published-cid]")
    page.fill("input[name=reward]", "20000")  # more than the dev account holds
    page.click("[data-testid=create-project]")
    error = page.locator("[data-testid=create-result] [data-testid=error]").inner_text()
    assert "less than the budget" in error
    page.fill("input[name=reward]", "abc")
    page.click("[data-testid=create-project]")
    page.wait_for_selector("[data-testid=create-result] [data-testid=error]:has-text('ETH amount')")
    assert len(projects(stack)) == before


def test_reverted_transaction_is_listed_with_its_error(page, stack: DevStack, finished) -> None:
    outsider = dev_accounts(stack.market.w3)[9].address
    r = httpx.post(
        f"{stack.url}/api/projects/{finished['project_id']}/cancel",
        json={"account": outsider},
        timeout=30,
    )
    assert r.status_code == 409
    open_page(page, stack, "#/txs")
    table = page.locator("[data-testid=tx-view] table").inner_text()
    assert "reverted" in table and "createProject" in table and "mined" in table


def test_reputation_view_shows_the_trainer_and_admissions(page, stack: DevStack, finished) -> None:
    trainer = finished["trainers"][0]
    open_page(page, stack, f"#/reputation/{trainer}")
    panel = page.locator("[data-testid=trainer-reputation]")
    assert f"#{finished['project_id']}" in panel.inner_text()
    assert panel.locator("svg circle").count() >= 2
    admission = page.locator(f"[data-testid=admission-{finished['project_id']}-1]").inner_text()
    assert "open admission" in admission and "admitted (committed on chain): 3" in admission


def test_round_view_verify_button_reports_an_outcome(page, stack: DevStack, finished) -> None:
    open_page(page, stack, f"#/project/{finished['project_id']}/round/1")
    page.click("[data-testid=verify]")
    result = page.locator("[data-testid=verify-result]")
    page.wait_for_function(
        "el => !el.textContent.includes('re-executing')", arg=result.element_handle()
    )
    text = result.inner_text()
    assert "verified in" in text and '"ok": true' in text


# An EIP-1193 provider as a wallet extension injects it, forwarding to the dev chain's RPC
# (anvil signs for its unlocked dev accounts, as a wallet would after the user approves).
WALLET = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts") method = "eth_accounts";
    const r = await fetch(RPC, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: Date.now(), method, params: params || [] }) });
    const body = await r.json();
    if (body.error) throw new Error(body.error.message);
    return body.result;
  },
};
"""


def test_browser_wallet_signs_create_project(page, stack: DevStack) -> None:
    page.add_init_script(WALLET.replace("RPC", repr(stack.node.rpc_url)))
    before = len(projects(stack))
    open_page(page, stack, "#/new")
    page.click("text=Connect wallet")
    wallet = dev_accounts(stack.market.w3)[0].address
    page.wait_for_selector(f"text=Wallet {wallet[:6]}")
    page.fill("input[name=hidden]", "8")
    page.click("[data-testid=publish-spec]")
    page.wait_for_selector("[data-testid=published-cid]")
    page.click("[data-testid=create-project]")
    error = page.locator("[data-testid=create-result] [data-testid=error]").inner_text()
    assert "aggregator's address" in error  # a wallet project names its aggregator
    page.fill("input[name=aggregator]", dev_accounts(stack.market.w3)[2].address)
    page.click("[data-testid=create-project]")
    page.wait_for_selector("[data-testid=tx-ok]")
    assert len(projects(stack)) == before + 1
    page.click("[data-testid=new-project-link]")
    page.wait_for_selector("[data-testid=project-view]")
    assert projects(stack)[-1]["owner"] == wallet
    page.click("nav >> text=Transactions")
    assert "mined" in page.locator("[data-testid=tx-view] table").inner_text()


def test_owner_cancels_then_refunds_from_the_project_page(page, stack: DevStack) -> None:
    owner = dev_accounts(stack.market.w3)[1].address
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        spec = client.post("/api/specs", json={"name": "to cancel", "hidden": [8]}).json()
        pid = client.post(
            "/api/projects",
            json={
                "account": owner,
                "spec_cid": spec["spec_cid"],
                "rounds": 3,
                "reward_per_round_eth": "2",
                "submission_window": 60,
                "reveal_window": 60,
                "finalize_window": 600,
            },
        ).json()["project_id"]
    page.on("dialog", lambda dialog: dialog.accept())
    open_page(page, stack, f"#/project/{pid}")
    assert page.locator("[data-testid=escrow]").inner_text().endswith("6 ETH")
    page.click("[data-testid=cancel]")
    page.wait_for_selector("[data-testid=round-1][data-phase=cancelled]")  # live re-render
    page.click("[data-testid=refund]")
    page.wait_for_selector("[data-testid=escrow]:has-text('0 ETH')")
    assert stack.market.get_project(pid).cancelled
    page.click("[data-testid=refund]")  # nothing left: the revert is shown by name
    error = page.locator("[data-testid=owner-result] [data-testid=error]").inner_text()
    assert "NothingToRefund" in error


def test_reputation_view_lists_refused_applicants_with_reasons(
    page, stack: DevStack, finished
) -> None:
    from market.aggregator.service import Aggregator
    from market.db import Database
    from market.reputation.commands import apply, open_round
    from market.storage import open_store

    accounts = dev_accounts(stack.market.w3)
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        admission = {"policy": "meritrank", "top_k": 1, "newcomer_quota": 1}
        spec = client.post(
            "/api/specs", json={"name": "gated", "hidden": [8], "admission": admission}
        ).json()
        pid = client.post(
            "/api/projects",
            json={
                "account": accounts[1].address,
                "spec_cid": spec["spec_cid"],
                "rounds": 1,
                "reward_per_round_eth": "1",
                "submission_window": 60,
                "reveal_window": 60,
                "finalize_window": 600,
            },
        ).json()["project_id"]
    db = Database.at(stack.data_dir)
    for account in [a for a in accounts if a.address in finished["trainers"][:2]] + accounts[8:10]:
        apply(stack.market, db, account, pid, None)
    store = open_store("embedded", stack.data_dir)
    open_round(Aggregator(stack.market, store, accounts[2], db), stack.market, store, db, pid)

    open_page(page, stack, "#/reputation")
    panel = page.locator(f"[data-testid=admission-{pid}-1]")
    assert "admission root" in panel.inner_text()
    refused = panel.locator("[data-testid=refused] tbody tr")
    assert refused.count() == 2
    text = panel.locator("[data-testid=refused]").inner_text()
    assert "not in the top 1" in text and "newcomer quota" in text


def test_open_round_shows_its_window_and_live_commits(page, stack: DevStack) -> None:
    from market.aggregator.service import Aggregator
    from market.db import Database
    from market.storage import open_store

    accounts = dev_accounts(stack.market.w3)
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        spec = client.post("/api/specs", json={"name": "open round", "hidden": [8]}).json()
        pid = client.post(
            "/api/projects",
            json={
                "account": accounts[1].address,
                "spec_cid": spec["spec_cid"],
                "rounds": 1,
                "reward_per_round_eth": "1",
                "submission_window": 7200,
                "reveal_window": 60,
                "finalize_window": 600,
            },
        ).json()["project_id"]
    store = open_store("embedded", stack.data_dir)
    Aggregator(stack.market, store, accounts[2], Database.at(stack.data_dir)).open_round(pid)
    open_page(page, stack, f"#/project/{pid}")
    assert page.get_attribute("[data-testid=round-1]", "data-phase") == "open"
    left = page.locator("[data-testid=deadline-1]").inner_text()
    assert left in ("commits close in 2 h 0 min", "commits close in 1 h 59 min")
    assert "No submissions yet" in page.locator("[data-testid=submissions]").inner_text()
    # A trainer commits: the page follows without a reload.
    stack.market.commit_update(accounts[5], pid, 1, b"\x11" * 32)
    page.wait_for_selector("[data-testid=submissions] tr[data-trainer]")
    assert "committed" in page.locator("[data-testid=submissions]").inner_text()
