"""The inbox's filter form by rule, in a real browser: only that rule's requests, page after
page (the rule kept in the paging links), and the value shown back escaped."""

from __future__ import annotations

import re

import pytest
from browser_support import login
from input_support import pause_under
from playwright.sync_api import Browser, expect
from web_support import mint

from afk.console import _inbox as inbox

pytestmark = pytest.mark.parametrize("backend_name", ["sqlite"])


def test_filter_by_rule_keeps_the_rule_across_pages(
    browser: Browser, served: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "PAGE", 2)  # the server runs in this process: 2 rows a page
    logs = pause_under(store_url, "gate-logs", "l1", "l2", "l3")
    pause_under(store_url, "gate-temp", "t1", "t2")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    expect(page.get_by_text("5 pending in all", exact=False)).to_be_visible()

    page.get_by_label("Rule").fill("gate-logs")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]rule=gate-logs(&|$)"))
    expect(page.get_by_text("3 match", exact=False)).to_be_visible()
    seen: list[str] = []
    while True:
        expect(page.get_by_label("Rule")).to_have_value("gate-logs")
        rows = page.locator("li.row")
        expect(rows.first).to_be_visible()
        for meta in rows.locator(".meta").all_inner_texts():
            assert "rule gate-logs" in meta, meta
        links = rows.locator("a.open").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        seen += [href.rsplit("/", 1)[1] for href in links]
        following = page.get_by_role("link", name="Next page")
        if not following.count():
            break
        assert "rule=gate-logs" in (following.get_attribute("href") or "")
        following.click()
    assert seen == logs
    first = page.get_by_role("link", name="First page")
    assert "rule=gate-logs" in (first.get_attribute("href") or "")

    page.get_by_label("Rule").fill("gate-nothing")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("Nothing waits for a decision with these filters")).to_be_visible()

    # A rule value with markup is shown back as text in the field, never as markup.
    sneaky = '"><b id="injected">x</b>'
    page.get_by_label("Rule").fill(sneaky)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("Rule")).to_have_value(sneaky)
    expect(page.locator("#injected")).to_have_count(0)
    page.context.close()
