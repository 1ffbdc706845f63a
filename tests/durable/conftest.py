"""Durable-run tests run against both stores (the root conftest's ``store_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from durable_support import _OPEN


@pytest.fixture
async def store_url(store_url: str) -> AsyncIterator[str]:
    yield store_url
    # Close the test's runners before their schema is dropped: open connections hold locks.
    while _OPEN:
        await _OPEN.pop().aclose()


@pytest.fixture
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side_effects.txt"
    path.touch()
    monkeypatch.setenv("AFK_TEST_SIDE_EFFECTS", str(path))
    return path
