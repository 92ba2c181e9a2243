"""Screenshots of the owner dashboard for the README (``make screenshots``).

Starts a whole local stack (anvil, LearningMarket, embedded store, the server on a free
loopback port), creates a project through the API with a dev account, runs two rounds with
simulated trainers (real TrainerClient and Aggregator code on digits splits), then drives
Debian's Chromium (never a downloaded browser) through the pages and saves PNGs under
tests/artifacts/screenshots/. ``--readme PATH`` also copies the project view there.

    .venv/bin/python scripts/screenshots.py --readme docs/dashboard.png
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def build_stack(data_dir: Path, rounds: int = 2, trainers: int = 7, sybils: int = 3):  # noqa: ANN201
    from market.api.devstack import DevStack, simulate_round
    from market.chain import dev_accounts

    stack = DevStack.start(data_dir)
    owner = dev_accounts(stack.market.w3)[1].address
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        spec = client.post(
            "/api/specs", json={"name": "digits (SybilWall)", "hidden": [32], "rule": "sybilwall"}
        ).raise_for_status()
        created = client.post(
            "/api/projects",
            json={
                "account": owner,
                "spec_cid": spec.json()["spec_cid"],
                "rounds": rounds + 1,
                "reward_per_round_eth": "1",
                "submission_window": 120,
                "reveal_window": 120,
                "finalize_window": 3600,
            },
        ).raise_for_status()
    project_id = created.json()["project_id"]
    for r in range(rounds):
        claims = trainers if r < rounds - 1 else trainers - 2
        simulate_round(
            stack.market,
            data_dir,
            project_id,
            trainers=trainers,
            claims=claims,
            seed=r,
            sybils=sybils,
        )
    return stack, project_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "artifacts" / "screenshots")
    parser.add_argument("--readme", type=Path, help="also copy the project view PNG here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="market-shots-") as scratch:
        stack, project_id = build_stack(Path(scratch))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("pageerror", lambda exc: print(f"page error: {exc}", file=sys.stderr))
                page.on(
                    "console",
                    lambda m: (
                        print(f"console {m.type}: {m.text}", file=sys.stderr)
                        if m.type in ("error", "warning")
                        else None
                    ),
                )
                shots = {
                    "project": f"#/project/{project_id}/round/2",
                    "projects": "#/",
                    "create": "#/new",
                    "reputation": "#/reputation",
                }
                for name, route in shots.items():
                    page.goto(f"{stack.url}/{route}")
                    page.wait_for_selector("main[data-ready='1']")
                    page.wait_for_timeout(400)
                    path = args.out / f"dashboard-{name}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(path)
                browser.close()
        finally:
            stack.stop()
    if args.readme:
        args.readme.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "dashboard-project.png", args.readme)
        print(args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
