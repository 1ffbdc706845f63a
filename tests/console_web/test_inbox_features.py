"""The inbox's other buttons and its reach: approve all identical, approve and allow
similar (a grant), a 375 px screen, the keyboard, hidden characters made visible."""

from __future__ import annotations

import time

import pytest
from browser_support import login, status
from playwright.sync_api import Browser, expect
from web_support import agent, executed, mint, pause, resume_ready, runner, sync, with_store

from afk.store import RunStore

pytestmark = pytest.mark.parametrize("backend_name", ["sqlite"])  # the main flow runs on both


def test_approve_all_n_identical_decides_each_of_them(
    browser: Browser, served: str, store_url: str
) -> None:
    ids = pause(store_url, "old_logs", "old_logs", "old_logs", "tmp")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    expect(page.get_by_text("3 identical")).to_have_count(3)
    page.goto(f"{served}/requests/{ids[0]}")
    page.get_by_role("button", name="Approve all 3 identical").click()
    expect(page.locator("#outcomes li")).to_have_count(3)
    expect(page.locator("#outcomes")).not_to_contain_text("refused")
    assert [status(store_url, i) for i in ids] == ["decided"] * 3 + ["pending"]
    assert len(resume_ready(store_url)) == 3 and executed == ["old_logs"] * 3
    page.context.close()


def test_approve_and_allow_similar_creates_the_grant_shown(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "old_logs")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{request_id}")
    expect(page.get_by_label("Within")).to_contain_text("this agent (dba)")
    page.get_by_label("Until").select_option(
        label=page.get_by_label("Until").locator("option").nth(1).inner_text()
    )  # 8 hours
    page.get_by_role("button", name="Approve and allow similar").click()
    expect(page.locator("#status")).to_contain_text("approved by alice")

    async def grants(store: RunStore) -> list[object]:
        return list(await store.list_grants(active_at=time.time()))

    [grant] = with_store(store_url, grants)
    assert (grant.tool_name, grant.scope, grant.scope_value) == ("drop_table", "agent", "dba")
    assert grant.created_by == "alice" and 7.9 * 3600 < grant.until - time.time() <= 8 * 3600
    resume_ready(store_url)

    async def again() -> object:  # the same call again runs without asking
        async with runner(store_url) as run:
            return await run.run(agent(), user_message="old_logs")

    assert sync(again).state == "completed" and executed == ["old_logs", "old_logs"]
    page.context.close()


def test_375_px_wide_nothing_scrolls_sideways_and_tab_reaches_approve(
    browser: Browser, served: str, store_url: str
) -> None:
    long_name = "archive_" + "x" * 300  # one long word: it must wrap, not widen the page
    [request_id] = pause(store_url, long_name)
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice, width=375)
    for path in ("/", f"/requests/{request_id}", f"/requests/{request_id}/edit"):
        page.goto(served + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)

    page.goto(f"{served}/requests/{request_id}")
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused == "Approve":
            break
    else:
        raise AssertionError("Tab never reached the Approve button")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("approved by alice")
    page.context.close()


def test_hidden_characters_in_arguments_are_shown_escaped(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "logs\u202egnp.exe")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{request_id}")
    expect(page.locator("#args")).to_contain_text("logs\\u202egnp.exe")
    expect(page.get_by_text("hidden or control characters were escaped")).to_be_visible()
    page.context.close()
