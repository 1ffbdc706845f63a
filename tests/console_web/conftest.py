"""Browser tests of the web inbox: Debian's Chromium driven by Playwright, one browser per
module, against the console served on 127.0.0.1 (both stores where the root conftest's
``store_url`` runs them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest
from web_support import executed, serve

CHROMIUM = os.environ.get("AFK_TEST_CHROMIUM", "/usr/bin/chromium")
# CI sets it: there, no browser is a failure, not a skip (as AFK_REQUIRE_POSTGRES).
REQUIRED = os.environ.get("AFK_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for the module (contexts per test keep their cookies apart)."""
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
        if REQUIRED:
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


@pytest.fixture
def served(store_url: str) -> Iterator[str]:
    with serve(store_url) as base:
        yield base


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives a real browser: slow (CI runs them: ``pytest -m slow``)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)
