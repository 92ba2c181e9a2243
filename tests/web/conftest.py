"""Browser fixtures: a live stack (anvil + market + embedded store + uvicorn on a free
loopback port) and Debian's Chromium driven by Playwright — never a downloaded browser.

Without /usr/bin/chromium or the playwright package the tests skip locally (run
scripts/install-browser.sh) and fail under CI, so a missing install cannot pass silently.
A failed test leaves a full-page screenshot under tests/artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from market.api.devstack import DevStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
_FAILED = pytest.StashKey[bool]()


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    missing = _missing()
    if missing:
        message = (
            f"browser tests need Chromium + Playwright: {missing}; run scripts/install-browser.sh"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack.start(tmp_path_factory.mktemp("web")) as s:
        yield s


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture
def page(chromium, stack: DevStack, request: pytest.FixtureRequest) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    yield page
    try:
        if request.node.stash.get(_FAILED, False):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.nodeid)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
