"""Channel tests run on both stores (the root conftest's ``store_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from channels_support import executed

from afk.store import RunStore, open_store


@pytest.fixture(autouse=True)
def _clean() -> None:
    executed.clear()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RunStore]:
    """A store object of its own (as a worker or the console would open it)."""
    opened = open_store(store_url)
    await opened.setup()
    yield opened
    await opened.close()
