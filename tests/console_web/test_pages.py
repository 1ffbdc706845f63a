"""The inbox over ASGI (no browser, no socket): the login form's nonce, cookie attributes,
same-origin POSTs, the API through a session, filters and paging, server-side validation
of edited arguments, and the schema form itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from web_support import agent, executed, runner

from afk.console import _forms as forms
from afk.console import _inbox as inbox
from afk.console import app
from afk.store import RunStore, open_store
from afk.store import _tokens as tk
from afk.store.store import TokenRecord


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RunStore]:
    opened = open_store(store_url)
    await opened.setup()
    yield opened
    await opened.close()


async def _paused(store_url: str, *tables: str) -> list[str]:
    async with runner(store_url) as run:
        results = [await run.run(agent(), user_message=t) for t in tables]
    return [r.pending_requests[0].request_id for r in results]


async def _token(store: RunStore, who: str) -> str:
    token_id = tk.new_token_id()
    secret = tk.new_secret(token_id)
    await store.add_token(
        TokenRecord(
            token_id=token_id, principal_id=who, secret_hash=tk.secret_hash(secret), created_at=0.0
        )
    )
    return secret


def _client(store: RunStore, base: str = "http://console") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app(store=store)), base_url=base)


async def _login(http: httpx.AsyncClient, secret: str) -> str:
    """Log in as the form does; the session's CSRF token."""
    form = await http.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answer = await http.post("/login", data={"nonce": nonce.group(1), "token": secret})
    assert answer.status_code == 303, answer.text
    page = await http.get("/")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_login_needs_the_forms_nonce_and_a_live_token(store: RunStore) -> None:
    secret = await _token(store, "alice")
    async with _client(store, "https://console") as http:
        assert (await http.post("/login", data={"token": secret})).status_code == 403
        form = await http.get("/login")
        assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        wrong = await http.post("/login", data={"nonce": nonce.group(1), "token": "afk_tok_x"})
        assert wrong.status_code == 401 and "afk_session" not in wrong.headers.get("set-cookie", "")
        form = await http.get("/login?next=//evil.example/")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        data = {"nonce": nonce.group(1), "token": secret, "next": "//evil.example/"}
        answer = await http.post("/login", data=data)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("afk_session=")
        )
        attributes = cookie.lower()
        for part in ("httponly", "samesite=lax", "secure", "max-age=28800", "path=/"):
            assert part in attributes, cookie


async def test_a_cross_site_post_is_refused_even_with_the_token(
    store_url: str, store: RunStore
) -> None:
    [request_id] = await _paused(store_url, "old_logs")
    async with _client(store) as http:
        csrf = await _login(http, await _token(store, "alice"))
        answer = await http.post(
            f"/requests/{request_id}/approve",
            data={"csrf": csrf},
            headers={"Origin": "http://evil.example"},
        )
        assert answer.status_code == 403
        assert (await http.get(f"/requests/{request_id}/approve")).status_code == 405
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"


async def test_the_api_takes_a_session_with_its_csrf_header(
    store_url: str, store: RunStore
) -> None:
    [request_id] = await _paused(store_url, "old_logs")
    async with _client(store) as http:
        csrf = await _login(http, await _token(store, "alice"))
        assert (await http.get("/api/v1/requests")).status_code == 200
        url = f"/api/v1/requests/{request_id}/decision"
        assert (await http.post(url, json={"kind": "allow"})).status_code == 401
        wrong = await http.post(url, json={"kind": "allow"}, headers={"X-CSRF-Token": "no"})
        assert wrong.status_code == 401
        answer = await http.post(url, json={"kind": "allow"}, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 200 and answer.json()["approver"] == "alice"


async def test_filters_and_cursor_paging(
    store_url: str, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "PAGE", 2)
    ids = await _paused(store_url, "a", "b", "c", "d", "e")
    async with _client(store) as http:
        await _login(http, await _token(store, "alice"))
        queries = (
            "",
            "?tool=drop_table",
            "?agent=dba",
            "?rule=gate-drops",
            "?tool=drop_table&agent=dba",
        )
        for query in queries:
            seen, url = [], "/" + query
            while url:
                page = await http.get(url)
                assert page.status_code == 200
                seen += re.findall(r'href="/requests/(req_\w+)"', page.text)
                found = re.search(r'href="(/\?[^"]*cursor=[^"]+)">Next page', page.text)
                url = found.group(1).replace("&amp;", "&") if found else ""
            assert seen == ids, query
        assert "5</strong> pending in all" in (await http.get("/")).text
        assert "5</strong> match" in (await http.get("/?rule=gate-drops")).text
        for query in ("?tool=send_email", "?rule=other", "?agent=nobody"):
            none = await http.get("/" + query)
            assert "Nothing waits" in none.text and "0</strong> match" in none.text, query
        run = (await store.get_request(ids[2])).run_id  # type: ignore[union-attr]
        one = await http.get(f"/?run={run}")
        assert re.findall(r'href="/requests/(req_\w+)"', one.text) == [ids[2]]
        assert (await http.get("/?cursor=garbage")).status_code == 422


async def test_edited_arguments_off_schema_are_refused_and_nothing_runs(
    store_url: str, store: RunStore
) -> None:
    [request_id] = await _paused(store_url, "old_logs")
    async with _client(store) as http:
        csrf = await _login(http, await _token(store, "alice"))
        for args in ('{"name": 5}', '{"nam": "x"}', '{"name": NaN}', "[1]"):
            answer = await http.post(
                f"/requests/{request_id}/edited", data={"csrf": csrf, "args": args}
            )
            assert answer.status_code == 422, (args, answer.text)
        preview = await http.post(
            f"/requests/{request_id}/edit", data={"csrf": csrf, "arg:name": "new_logs"}
        )
        assert preview.status_code == 200 and "Approve with these arguments" in preview.text
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending" and executed == []


def test_the_schema_form_reads_back_typed_values_and_names_the_field() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "rows": {"type": "integer"},
            "ratio": {"type": "number"},
            "force": {"type": "boolean"},
            "mode": {"type": "string", "enum": ["fast", "safe"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "note": {"type": "string"},
        },
        "required": ["name", "rows"],
    }
    original = {"name": "t", "rows": 3, "force": True, "mode": "safe", "tags": ["a"]}
    shown = {f.name: f.widget for f in forms.fields(schema, original)}
    assert shown == {
        "name": "text",
        "rows": "number",
        "ratio": "number",
        "force": "checkbox",
        "mode": "select",
        "tags": "json",
        "note": "text",
    }
    form = {"arg:name": "t2", "arg:rows": "4", "arg:ratio": "0.5", "arg:mode": "fast"}
    form |= {"arg:tags": '["a", "b"]', "arg:note": ""}
    args = forms.read(schema, form, original)
    assert args == {
        "name": "t2",
        "rows": 4,
        "ratio": 0.5,
        "force": False,
        "mode": "fast",
        "tags": ["a", "b"],
    }
    kinds = {c.name: c.kind for c in forms.diff(original, args)}
    assert kinds == {
        "name": "changed",
        "rows": "changed",
        "ratio": "added",
        "force": "changed",
        "mode": "changed",
        "tags": "changed",
    }
    for bad, field in (({"arg:rows": "1.5"}, "rows"), ({"arg:mode": "x"}, "mode")):
        with pytest.raises(Exception, match=field) as caught:
            forms.read(schema, {**form, **bad}, original)
        assert getattr(caught.value, "field", None) == field


async def test_a_quorum_shows_the_votes_so_far_until_it_is_met(
    store_url: str, store: RunStore
) -> None:
    async with runner(store_url, approvers=["alice", "bob"], quorum=2) as run:
        result = await run.run(agent(), user_message="old_logs")
    request_id = result.pending_requests[0].request_id
    for who, after in (("alice", "Pending"), ("bob", "Decided:")):
        async with _client(store) as http:
            csrf = await _login(http, await _token(store, who))
            answer = await http.post(f"/requests/{request_id}/approve", data={"csrf": csrf})
            assert answer.status_code == 303, answer.text
            page = await http.get(f"/requests/{request_id}")
            status = page.text[page.text.index('id="status"') :][:400]
            assert after in page.text and "alice: allow" in page.text, status
            assert "2 must approve" in page.text


async def test_the_risk_line_is_read_from_the_ledger_among_many_entries(
    store_url: str, store: RunStore
) -> None:
    ids = await _paused(store_url, *(f"t{n}" for n in range(12)))
    for request_id in (ids[0], ids[7], ids[11]):
        record = await store.get_request(request_id)
        assert record is not None
        d = await inbox.detail(store, record)
        assert (d.risk.source, d.risk.rule, d.risk.action) == (
            "ledger",
            "gate-drops",
            "request_approval",
        )
        assert not d.risk.mismatch and d.excerpt.user == f"t{ids.index(request_id)}"


async def test_a_second_click_meets_the_first_decision(store_url: str, store: RunStore) -> None:
    [request_id] = await _paused(store_url, "old_logs")
    async with _client(store) as alice, _client(store) as bob:
        alice_csrf = await _login(alice, await _token(store, "alice"))
        bob_csrf = await _login(bob, await _token(store, "bob"))
        first = await alice.post(f"/requests/{request_id}/approve", data={"csrf": alice_csrf})
        assert first.status_code == 303
        late = await bob.post(
            f"/requests/{request_id}/deny", data={"csrf": bob_csrf, "reason": "no"}
        )
        assert late.status_code == 409 and "already decided" in late.text
        assert 'class="approver">alice<' in late.text
