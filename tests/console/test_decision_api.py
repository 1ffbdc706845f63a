"""The decision API over ASGI, on SQLite and Postgres: every status code, decided as the
token's principal, idempotent retries, and the run resuming with exactly what was decided."""

from __future__ import annotations

import asyncio
import json
import time

from console_support import agent, bearer, client, executed, mint, paused, runner

from afk.store import RunStore


async def test_an_approval_with_edited_args_runs_once_as_decided(
    store_url: str, store: RunStore
) -> None:
    async with runner(store_url) as run:
        request_id = await paused(run)
        secret, token = await mint(store, "alice")
        async with client(store) as http:
            body = {
                "kind": "allow",
                "reason": "ok",
                "updated_tool_args": {"name": "tmp_logs"},
                "approver": "mallory",
            }
            answer = await http.post(
                f"/api/v1/requests/{request_id}/decision", json=body, headers=bearer(secret)
            )
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert got["status"] == "decided" and got["approver"] == "alice"
        assert got["decision"]["updated_tool_args"] == {"name": "tmp_logs"}
        assert got["decision"]["approver"] == "alice"  # the body's approver is not who decided
        [decided] = [e for e in await store.list_log() if e.kind == "decided"]
        assert decided.actor == "alice"
        assert json.loads(decided.payload)["authenticated_by"] == f"token:{token.token_id}"
        assert "mallory" not in decided.payload
        record = await store.get_request(request_id)
        assert record is not None
        resumed = await run.resume(record.run_id, agent())
        assert resumed.state == "completed" and executed == ["tmp_logs"]
        assert (await run.resume_ready([agent()])) == [] and executed == ["tmp_logs"]


async def test_an_ineligible_principal_gets_403_and_nothing_runs(
    store_url: str, store: RunStore
) -> None:
    async with runner(store_url, approvers=["bob"]) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        async with client(store) as http:
            answer = await http.post(
                f"/api/v1/requests/{request_id}/decision",
                json={"kind": "allow", "approver": "bob"},
                headers=bearer(secret),
            )
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["type"] == "UnauthorizedApproverError"
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"
        assert (await run.resume_ready([agent()])) == [] and executed == []
        [refused] = [e for e in await store.list_log() if e.kind == "refused"]
        assert refused.actor == "alice"


async def test_a_second_decision_is_409_naming_the_first(store_url: str, store: RunStore) -> None:
    async with runner(store_url) as run:
        request_id = await paused(run)
        alice, _ = await mint(store, "alice")
        bob, _ = await mint(store, "bob")
        url = f"/api/v1/requests/{request_id}/decision"
        async with client(store) as http:
            first = await http.post(
                url, json={"kind": "deny", "reason": "no"}, headers=bearer(alice)
            )
            second = await http.post(url, json={"kind": "allow"}, headers=bearer(bob))
        assert first.status_code == 200
        assert second.status_code == 409, second.text
        error = second.json()["error"]
        assert error["type"] == "AlreadyDecidedError"
        assert error["first_decision"]["kind"] == "deny"
        assert error["first_decision"]["approver"] == "alice"


async def test_idempotent_retries_return_the_first_answer_even_after_a_restart(
    store_url: str, store: RunStore
) -> None:
    async with runner(store_url) as run:
        request_id, other_id = await paused(run), await paused(run, "older_logs")
        secret, _ = await mint(store, "alice")
        url = f"/api/v1/requests/{request_id}/decision"
        headers = {**bearer(secret), "Idempotency-Key": "k-1"}
        async with client(store) as http:
            first = await http.post(url, json={"kind": "allow"}, headers=headers)
            again = await http.post(url, json={"kind": "deny"}, headers=headers)
            plain = await http.post(url, json={"kind": "allow"}, headers=bearer(secret))
            reused = await http.post(
                f"/api/v1/requests/{other_id}/decision", json={"kind": "allow"}, headers=headers
            )
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert plain.status_code == 409  # without the key it is a second decision
        assert reused.status_code == 422 and reused.json()["error"]["field"] == "Idempotency-Key"
        async with client(store) as restarted:  # a new app: the answer came from the store
            later = await restarted.post(url, json={"kind": "allow"}, headers=headers)
        assert later.status_code == 200 and later.json() == first.json()
        bob, _ = await mint(store, "bob")
        async with client(store) as http:  # keys are per principal
            bobs = await http.post(
                url, json={"kind": "allow"}, headers={**bearer(bob), "Idempotency-Key": "k-1"}
            )
        assert bobs.status_code == 409


async def test_an_expired_request_is_410(store_url: str, store: RunStore) -> None:
    async with runner(store_url, timeout_s=0.5) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        await asyncio.sleep(0.8)
        async with client(store) as http:
            answer = await http.post(
                f"/api/v1/requests/{request_id}/decision",
                json={"kind": "allow"},
                headers=bearer(secret),
            )
            shown = await http.get(f"/api/v1/requests/{request_id}", headers=bearer(secret))
        assert answer.status_code == 410, answer.text
        assert shown.json()["past_deadline"] is True and shown.json()["status"] == "pending"


async def test_unknown_ids_are_404_and_bad_bodies_422_naming_the_field(
    store_url: str, store: RunStore
) -> None:
    async with runner(store_url) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        url = f"/api/v1/requests/{request_id}/decision"
        async with client(store) as http:
            auth = bearer(secret)
            assert (await http.get("/api/v1/requests/req_nope", headers=auth)).status_code == 404
            assert (await http.get("/api/v1/runs/run_nope", headers=auth)).status_code == 404
            nope = await http.post(
                "/api/v1/requests/req_nope/decision", json={"kind": "allow"}, headers=auth
            )
            assert nope.status_code == 404
            cases = {
                "body": b"{not json",
                "kind": b'{"kind": "maybe"}',
                "stop_run": b'{"kind": "allow", "stop_run": true}',
                "value": b'{"kind": "allow", "value": "x"}',
                "grant.scope": b'{"kind": "allow", "grant": {"scope": "galaxy", "until": 1}}',
                "updated_tool_args": b'{"kind": "allow", "updated_tool_args": {"name": 5}}',
            }
            for field, raw in cases.items():
                answer = await http.post(url, content=raw, headers=auth)
                assert answer.status_code == 422, (field, answer.text)
                assert answer.json()["error"]["field"] == field, answer.text
            assert "name" in answer.json()["error"]["message"]  # the argument the schema refused
            tool = await http.get("/api/v1/requests?tool=drop_table&order=created", headers=auth)
            assert tool.status_code == 422 and tool.json()["error"]["field"] == "order"
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"


async def test_no_valid_token_no_access(store_url: str, store: RunStore) -> None:
    async with runner(store_url) as run:
        request_id = await paused(run)
        good, token = await mint(store, "alice")
        expired, _ = await mint(store, "alice", expires_at=time.time() - 1)
        revoked, gone = await mint(store, "alice")
        await store.revoke_token(gone.token_id, by="admin", now=time.time())
        wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        unknown = good.replace(token.token_id, "tok_" + "0" * 20)
        headers = [
            {},
            {"Authorization": "Basic YWxpY2U6eA=="},
            {"Authorization": "Bearer"},
            bearer("not-a-token"),
            bearer(wrong),
            bearer(unknown),
            bearer(expired),
            bearer(revoked),
        ]
        async with client(store) as http:
            for h in headers:
                for method, path, body in [
                    ("GET", "/api/v1/requests", None),
                    ("GET", f"/api/v1/requests/{request_id}", None),
                    ("POST", f"/api/v1/requests/{request_id}/decision", {"kind": "allow"}),
                    ("GET", "/api/v1/runs", None),
                ]:
                    answer = await http.request(method, path, json=body, headers=h)
                    assert answer.status_code == 401, (h, path)
                    assert answer.headers["www-authenticate"].startswith("Bearer")
            assert (await http.get("/api/v1/requests", headers=bearer(good))).status_code == 200
            assert (await http.get("/api/v1/openapi.json")).status_code == 200  # public
        record = await store.get_request(request_id)
        assert record is not None and record.status == "pending"
