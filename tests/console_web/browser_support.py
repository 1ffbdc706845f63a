"""Browser-side helpers: a logged-in context, and store reads for assertions."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, Page, expect
from web_support import with_store

from afk.store import RunStore


def login(browser: Browser, base: str, secret: str, *, width: int = 1000) -> Page:
    """A fresh browser context logged in with ``secret``, on the inbox."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base + "/")
    return page


def ledger(store_url: str) -> list[Any]:
    async def read(store: RunStore) -> list[Any]:
        return await store.list_log()

    return with_store(store_url, read)


def status(store_url: str, request_id: str) -> str:
    async def read(store: RunStore) -> str:
        record = await store.get_request(request_id)
        assert record is not None
        return record.status

    return with_store(store_url, read)
