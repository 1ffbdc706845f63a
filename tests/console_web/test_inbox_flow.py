"""The approver's main path in a real browser: log in, find the pending drop, edit its
arguments, approve; a worker runs the edited call once; a second approver sees it decided."""

from __future__ import annotations

import json
import re

import pytest
from browser_support import ledger, login
from playwright.sync_api import Browser, expect
from web_support import executed, mint, pause, resume_ready


@pytest.mark.slow
def test_edit_and_approve_then_the_worker_runs_the_edited_call_once(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "old_logs")
    alice, alice_token = mint(store_url, "alice")
    bob, _ = mint(store_url, "bob")

    page = login(browser, served, alice)
    expect(page.get_by_text("1 pending in all", exact=False)).to_be_visible()
    row = page.get_by_role("link", name=re.compile("drop_table"))
    expect(row).to_contain_text('{"name":"old_logs"}')

    second = login(browser, served, bob)  # the other approver, watching the same request
    second.goto(f"{served}/requests/{request_id}")
    expect(second.locator("#status")).to_contain_text("Pending")

    row.click()
    expect(page.locator("#args")).to_contain_text('"name": "old_logs"')
    expect(page.locator("#risk")).to_contain_text("gate-drops")
    expect(page.locator("#risk")).to_contain_text("from the ledger")
    expect(page.locator(".msg.user")).to_contain_text("old_logs")  # what the user asked
    page.get_by_role("button", name="Edit and approve").click()
    page.get_by_label("name (required)").fill("old_logs_2025")
    page.get_by_role("button", name="Review changes").click()
    expect(page.locator("#diff")).to_contain_text('"old_logs"')
    expect(page.locator("#diff")).to_contain_text('"old_logs_2025"')
    page.get_by_role("button", name="Approve with these arguments").click()

    expect(page).to_have_url(f"{served}/requests/{request_id}")
    expect(page.locator("#status")).to_contain_text("approved by alice")
    expect(page.locator("#status")).to_contain_text('{"name":"old_logs_2025"}')
    # The second browser reloads on the decision's event and sees who decided.
    expect(second.locator("#status")).to_contain_text("approved by alice", timeout=10_000)
    expect(second.get_by_role("button", name="Approve", exact=True)).to_have_count(0)

    assert executed == []
    [result] = resume_ready(store_url)
    assert result.state == "completed" and executed == ["old_logs_2025"]
    assert resume_ready(store_url) == [] and executed == ["old_logs_2025"]

    [decided] = [e for e in ledger(store_url) if e.kind == "decided"]
    payload = json.loads(decided.payload)
    assert decided.actor == "alice" and payload["principal"] == "alice"
    assert payload["authenticated_by"] == f"session:token:{alice_token}"
    page.context.close()
    second.context.close()
