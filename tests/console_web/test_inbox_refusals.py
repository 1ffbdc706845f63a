"""What cannot decide, in a real browser: no session, a forged session, a wrong CSRF token,
an approver the rule does not name, a revoked token. Each leaves the request pending and
nothing runs."""

from __future__ import annotations

import re

from browser_support import ledger, login, status
from itsdangerous import URLSafeTimedSerializer
from playwright.sync_api import Browser, expect
from web_support import executed, mint, pause, resume_ready, with_store

from afk.store import RunStore


def test_no_session_a_forged_one_or_a_wrong_csrf_token_decides_nothing(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "old_logs")
    alice, token_id = mint(store_url, "alice")
    approve = f"{served}/requests/{request_id}/approve"

    anonymous = browser.new_context()
    assert anonymous.request.post(approve, form={"csrf": "x"}).status == 403
    page = anonymous.new_page()
    page.goto(f"{served}/requests/{request_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))  # a page needs a session too

    # A session cookie signed with another key: everything else right, even the CSRF token.
    forged = URLSafeTimedSerializer(b"k" * 32, salt="afk.console.session.v1").dumps(
        {"p": "alice", "by": f"token:{token_id}", "groups": [], "name": None, "csrf": "c" * 43}
    )
    anonymous.add_cookies([{"name": "afk_session", "value": forged, "url": served}])
    assert anonymous.request.post(approve, form={"csrf": "c" * 43}).status == 403

    page = login(browser, served, alice)
    [real] = [c for c in page.context.cookies() if c["name"] == "afk_session"]
    assert real["httpOnly"] and real["sameSite"] == "Lax"
    damaged = real["value"][:-2] + ("AA" if not real["value"].endswith("AA") else "BB")
    anonymous.add_cookies([{"name": "afk_session", "value": damaged, "url": served}])
    assert anonymous.request.post(approve, form={"csrf": "c" * 43}).status == 403

    page.goto(f"{served}/requests/{request_id}")
    page.locator("form[action$='/approve'] input[name=csrf]").evaluate("e => e.value = 'wrong'")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("CSRF token is missing or wrong")
    # The session's own cookie, with no CSRF field at all.
    assert page.context.request.post(approve, form={"reason": "x"}).status == 403
    # The API takes the cookie for a POST only with the token in X-CSRF-Token.
    api = f"{served}/api/v1/requests/{request_id}/decision"
    assert page.context.request.post(api, data={"kind": "allow"}).status == 401

    assert status(store_url, request_id) == "pending"
    assert resume_ready(store_url) == [] and executed == []
    assert not [e for e in ledger(store_url) if e.kind == "decided"]
    anonymous.close()
    page.context.close()


def test_an_approver_the_rule_does_not_name_cannot_decide(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "old_logs", approvers=["bob"])
    mallory, _ = mint(store_url, "mallory")
    page = login(browser, served, mallory)
    page.goto(f"{served}/requests/{request_id}")
    expect(page.locator("#eligible")).to_contain_text("bob")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("bob")
    assert status(store_url, request_id) == "pending"
    assert resume_ready(store_url) == [] and executed == []
    [refused] = [e for e in ledger(store_url) if e.kind == "refused"]
    assert refused.actor == "mallory"
    page.context.close()


def test_deny_asks_for_a_reason_and_the_agent_hears_it(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = pause(store_url, "old_logs")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{request_id}")
    page.get_by_role("button", name="Deny").click()  # no reason: the form does not go
    assert status(store_url, request_id) == "pending"
    page.get_by_label("Reason for denying").fill("old_logs is still read by billing")
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#status")).to_contain_text("denied by alice")
    expect(page.locator("#status")).to_contain_text("still read by billing")
    [result] = resume_ready(store_url)
    assert executed == [] and "still read by billing" in (result.final_text or "")
    page.context.close()


def test_a_revoked_token_ends_its_session_and_log_out_ends_it_too(
    browser: Browser, served: str, store_url: str
) -> None:
    alice, token_id = mint(store_url, "alice")
    page = login(browser, served, alice)

    async def revoke(store: RunStore) -> None:
        await store.revoke_token(token_id, by="admin", now=0.0 + __import__("time").time())

    with_store(store_url, revoke)
    page.reload()
    expect(page).to_have_url(re.compile(r"/login"))
    page.context.close()

    bob, _ = mint(store_url, "bob")
    page = login(browser, served, bob)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(served + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.context.close()
