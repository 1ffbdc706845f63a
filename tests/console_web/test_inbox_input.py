"""Input requests answered from the inbox, in a real browser: a schema'd answer reaches the
tool, a bad one is refused naming the field (the request stays pending), decline, a second
answer meets the first, an answer posted to an approval request (and approval buttons posted
to an input request) refused server-side, and reading these pages changes nothing."""

from __future__ import annotations

import time

import pytest
from browser_support import ledger, login, status
from input_support import ask, resume_reports, store_contents
from playwright.sync_api import Browser, Page, expect
from reporter_support import received
from web_support import executed, mint, pause, resume_ready, with_store

from afk.store import RunStore

pytestmark = pytest.mark.parametrize("backend_name", ["sqlite"])


@pytest.fixture(autouse=True)
def _clean_received() -> None:
    received.clear()


def _csrf(page: Page) -> str:
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value


def _decision(store_url: str, request_id: str) -> str | None:
    async def read(store: RunStore) -> str | None:
        record = await store.get_request(request_id)
        assert record is not None
        return record.decision

    return with_store(store_url, read)


def test_a_schemad_answer_reaches_the_tool_and_a_bad_one_is_refused_naming_the_field(
    browser: Browser, served: str, store_url: str
) -> None:
    [request_id] = ask(store_url, "q3")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    expect(page.get_by_text("asks for input")).to_have_count(1)
    page.goto(f"{served}/requests/{request_id}")
    # The prompt and schema are shown as text: the markup is not rendered, the bidi
    # override is made visible.
    expect(page.locator("#prompt")).to_have_text("Who gets the <b>report</b> q3?")
    expect(page.locator("#prompt b")).to_have_count(0)
    expect(page.locator("#schema")).to_contain_text('"additionalProperties": false')
    expect(page.locator("#schema")).to_contain_text("a team \\u202e(not a person)")
    for name in ("Approve", "Deny", "Edit and approve", "Approve and allow similar"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)

    field = page.get_by_label("Your answer")
    for bad, said in (
        ("ops", "not valid JSON"),
        ('{"to": "ops", "to": "dev"}', "duplicate key"),
        ('{"to": 5}', "does not fit its input_schema"),
    ):
        field.fill(bad)
        page.get_by_role("button", name="Answer", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text(said)
        expect(page.get_by_role("alert")).to_contain_text("the answer")
        field = page.get_by_label("Your answer")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_value(bad)  # kept, to be corrected
        expect(page.locator("#answer-error")).to_contain_text(said)
        expect(page.locator("#status")).to_contain_text("Pending")
        assert status(store_url, request_id) == "pending"
    assert resume_reports(store_url) == [] and received == []

    field.fill('{"to": "ops", "copies": 2}')
    page.get_by_role("button", name="Answer", exact=True).click()
    expect(page).to_have_url(f"{served}/requests/{request_id}")
    expect(page.locator("#status")).to_contain_text("answered by alice")
    expect(page.locator("#given")).to_have_text('{"to": "ops", "copies": 2}')
    expect(page.get_by_role("button", name="Answer", exact=True)).to_have_count(0)

    [result] = resume_reports(store_url)
    assert result.state == "completed" and result.final_text == "sent q3 to ops"
    assert received == [{"to": "ops", "copies": 2}]
    refused = [e for e in ledger(store_url) if e.kind == "refused"]
    assert len(refused) == 3 and {e.actor for e in refused} == {"alice"}
    page.context.close()


def test_decline_tells_the_tool_and_a_second_answer_meets_the_first(
    browser: Browser, served: str, store_url: str
) -> None:
    declined, answered = ask(store_url, "q1", "q2")
    alice, _ = mint(store_url, "alice")
    bob, _ = mint(store_url, "bob")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{declined}")
    page.get_by_label("Reason for declining").fill("nobody should get q1")
    page.get_by_role("button", name="Decline").click()
    expect(page.locator("#status")).to_contain_text("declined by alice")
    expect(page.locator("#status")).to_contain_text("nobody should get q1")

    second = login(browser, served, bob)
    second.goto(f"{served}/requests/{answered}")
    bob_csrf = _csrf(second)
    page.goto(f"{served}/requests/{answered}")
    page.get_by_label("Your answer").fill('{"to": "ops"}')
    page.get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("#status")).to_contain_text("answered by alice")
    first = _decision(store_url, answered)
    # Bob's page still had the form: his answer, posted after Alice's, is refused.
    late = second.context.request.post(
        f"{served}/requests/{answered}/answer", form={"csrf": bob_csrf, "value": '{"to": "dev"}'}
    )
    assert late.status == 409 and "already decided" in late.text()
    assert "answered" in late.text() and 'class="approver">alice<' in late.text()
    late = second.context.request.post(
        f"{served}/requests/{answered}/decline", form={"csrf": bob_csrf}
    )
    assert late.status == 409 and _decision(store_url, answered) == first

    results = resume_reports(store_url)
    done = sorted(r.final_text for r in results)
    assert done == ["not sent: nobody should get q1", "sent q2 to ops"]
    assert sorted(map(str, received)) == sorted(
        map(str, [("declined", "nobody should get q1"), {"to": "ops"}])
    )
    page.context.close()
    second.context.close()


def test_each_kind_of_request_refuses_the_other_kinds_buttons_server_side(
    browser: Browser, served: str, store_url: str
) -> None:
    [approval] = pause(store_url, "old_logs")
    [question] = ask(store_url, "q1")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{approval}")
    expect(page.get_by_role("button", name="Answer", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Decline")).to_have_count(0)
    csrf = _csrf(page)
    post = page.context.request.post

    # An answer (or a decline) posted to an approval request, as no page of it offers.
    for path, form in (
        ("answer", {"value": "yes"}),
        ("answer", {"value": '{"to": "ops"}'}),
        ("decline", {"reason": "no"}),
    ):
        refused = post(f"{served}/requests/{approval}/{path}", form={"csrf": csrf, **form})
        assert refused.status == 422, (path, refused.text())
        assert "approval request" in refused.text()
    # Approval-only buttons posted to an input request.
    for path, form in (
        ("approve", {}),
        ("deny", {"reason": "no"}),
        ("grant", {"scope": "agent", "duration": "3600", "match": "any"}),
        ("edited", {"args": '{"title": "x"}'}),
        ("edit", {"arg:title": "x"}),
    ):
        refused = post(f"{served}/requests/{question}/{path}", form={"csrf": csrf, **form})
        assert refused.status == 422, (path, refused.text())
    edit = page.goto(f"{served}/requests/{question}/edit")
    assert edit is not None and edit.status == 422
    expect(page.get_by_role("alert")).to_contain_text("only approval requests")
    expect(page.get_by_role("button", name="Review changes")).to_have_count(0)

    assert status(store_url, approval) == "pending" and status(store_url, question) == "pending"
    assert resume_ready(store_url) == [] and executed == []
    assert resume_reports(store_url) == [] and received == []
    assert not [e for e in ledger(store_url) if e.kind == "decided"]
    page.context.close()


def test_reading_the_pages_changes_nothing_and_an_expired_question_takes_no_answer(
    browser: Browser, served: str, store_url: str
) -> None:
    [question] = ask(store_url, "q1", timeout_s=0.3)
    [approval] = pause(store_url, "old_logs")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{question}")
    csrf = _csrf(page)
    time.sleep(0.5)  # past its deadline: a lazy expiry would write now
    before = store_contents(store_url)
    for path in (
        "/",
        "/?rule=gate-drops",
        "/?rule=%22%3E%3Cb%3Ex",
        f"/requests/{question}",
        f"/requests/{question}/edit",
        f"/requests/{approval}",
        f"/requests/{approval}/edit",
    ):
        page.goto(served + path)
        assert page.context.request.head(served + path).status in (200, 422), path
    for path in ("answer", "decline"):  # GET is not how a decision is made
        assert page.context.request.get(f"{served}/requests/{question}/{path}").status == 405
    assert store_contents(store_url) == before

    page.goto(f"{served}/requests/{question}")
    page.get_by_label("Your answer").fill('{"to": "ops"}')
    page.get_by_role("button", name="Answer", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("expired")
    late = page.context.request.post(
        f"{served}/requests/{question}/answer", form={"csrf": csrf, "value": '{"to": "ops"}'}
    )
    assert late.status == 410, late.text()
    assert _decision(store_url, question) is None and received == []
    page.context.close()


def test_the_runs_requester_may_not_answer_its_question(
    browser: Browser, served: str, store_url: str
) -> None:
    [question] = ask(store_url, "q1", requested_by="alice")
    alice, _ = mint(store_url, "alice")
    page = login(browser, served, alice)
    page.goto(f"{served}/requests/{question}")
    page.get_by_label("Your answer").fill('{"to": "ops"}')
    page.get_by_role("button", name="Answer", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("may not decide its own request")
    expect(page.get_by_label("Your answer")).to_have_value('{"to": "ops"}')
    assert status(store_url, question) == "pending" and received == []
    [refused] = [e for e in ledger(store_url) if e.kind == "refused"]
    assert refused.actor == "alice"
    page.context.close()
