"""What the API shows, paged, and that reading it changes nothing in the store."""

from __future__ import annotations

import asyncio

from console_support import bearer, client, mint, paused, runner
from dba_support import store_contents

from afk.store import RunStore


async def test_requests_listed_and_shown_exactly(store_url: str, store: RunStore) -> None:
    async with runner(store_url, approvers=["alice", "bob"]) as run:
        ids = [await paused(run, f"t{n}") for n in range(3)]
        secret, _ = await mint(store, "alice")
        auth = bearer(secret)
        async with client(store) as http:
            first = (await http.get("/api/v1/requests?limit=2", headers=auth)).json()
            cursor = first["next_cursor"]
            rest = await http.get(f"/api/v1/requests?limit=2&cursor={cursor}", headers=auth)
            detail = (await http.get(f"/api/v1/requests/{ids[0]}", headers=auth)).json()
            record = await store.get_request(ids[1])
            assert record is not None
            by_run = await http.get(f"/api/v1/requests?run={record.run_id}", headers=auth)
            runs = (await http.get("/api/v1/runs", headers=auth)).json()
            one_run = (await http.get(f"/api/v1/runs/{record.run_id}", headers=auth)).json()
            decided = await http.get("/api/v1/requests?status=decided", headers=auth)
            bad = await http.get("/api/v1/requests?status=maybe", headers=auth)
        listed = [r["request_id"] for r in first["items"] + rest.json()["items"]]
        assert listed == ids and rest.json()["next_cursor"] is None
        assert first["items"][0]["tool_args"] == {"name": "t0"}
        assert first["items"][0]["rule_id"] == "gate-drops"
        assert detail["tool_args"] == {"name": "t0"} and detail["tool_name"] == "drop_table"
        assert detail["tool_schema"]["properties"]["name"]["type"] == "string"
        assert detail["reason"] == "Dropping a table needs a human."
        assert detail["eligible_approvers"] == ["alice", "bob"] and detail["votes"] == []
        assert detail["status"] == "pending" and detail["decision"] is None
        assert detail["expires_at"] > detail["created_at"]
        # The platform's account of why it waits (from the policy's ledger entry), and the
        # conversation that led to it.
        assert detail["risk"]["rule"] == "gate-drops" and detail["risk"]["source"] == "ledger"
        assert detail["risk"]["action"] == "request_approval"
        assert detail["conversation"]["user"] == "t0"
        assert detail["conversation"]["calls"][0]["name"] == "drop_table"
        assert [r["request_id"] for r in by_run.json()["items"]] == [ids[1]]
        assert {r["run_id"] for r in runs["items"]} >= {record.run_id}
        assert one_run["status"] == "paused" and one_run["requests"][0]["request_id"] == ids[1]
        assert "snapshot" not in one_run
        assert decided.json()["items"] == []
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


async def test_get_and_head_change_nothing(store_url: str, store: RunStore) -> None:
    async with runner(store_url, timeout_s=0.3) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        await asyncio.sleep(0.5)  # past its deadline: a lazy expiry would write now
        before = await store_contents(store)
        async with client(store) as http:
            for path in [
                "/api/v1/requests",
                "/api/v1/requests?status=all",
                f"/api/v1/requests/{request_id}",
                "/api/v1/runs",
                "/api/v1/openapi.json",
            ]:
                for method in ("GET", "HEAD"):
                    answer = await http.request(method, path, headers=bearer(secret))
                    assert answer.status_code == 200, (method, path, answer.text)
            head = await http.head("/api/v1/events", headers=bearer(secret))
            assert head.status_code == 200
            assert head.headers["content-type"].startswith("text/event-stream")
            refused = await http.get("/api/v1/requests", headers=bearer("afk_nope"))
            assert refused.status_code == 401
        assert await store_contents(store) == before


async def test_the_openapi_document_names_every_endpoint(store: RunStore) -> None:
    async with client(store) as http:
        document = (await http.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/requests",
        "/api/v1/requests/{request_id}",
        "/api/v1/requests/{request_id}/decision",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/events",
    }
    listed = {p["name"] for p in paths["/api/v1/requests"]["get"]["parameters"]}
    assert listed == {"status", "run", "order", "tool", "rule", "agent", "cursor", "limit"}
    codes = set(paths["/api/v1/requests/{request_id}/decision"]["post"]["responses"])
    assert codes == {"200", "401", "403", "404", "409", "410", "422"}


async def test_a_bad_cursor_or_limit_is_422_naming_it(store: RunStore) -> None:
    secret, _ = await mint(store, "alice")
    async with client(store) as http:
        for path, field in [
            ("/api/v1/requests?cursor=nope", "cursor"),
            ("/api/v1/runs?cursor=nope", "cursor"),
            ("/api/v1/requests?limit=0", "limit"),
            ("/api/v1/runs?limit=x", "limit"),
            ("/api/v1/requests?limit=1&limit=2", "limit"),
            ("/api/v1/requests?order=newest", "order"),
            ("/api/v1/requests?order=expires&status=decided", "status"),
            ("/api/v1/requests?tool=", "tool"),
            ("/api/v1/requests?rule=gate-drops&run=run_1", "rule"),
            ("/api/v1/requests?agent=dba&order=created", "order"),
            ("/api/v1/requests?order=expires&cursor=nope", "cursor"),
        ]:
            answer = await http.get(path, headers=bearer(secret))
            assert answer.status_code == 422, path
            assert answer.json()["error"]["field"] == field, path


async def test_pending_requests_by_expiry_and_filtered(store_url: str, store: RunStore) -> None:
    async with runner(store_url, timeout_s=3600) as run:
        made = [await paused(run, f"t{i}") for i in range(3)]
    secret, _ = await mint(store, "alice")
    auth = bearer(secret)
    records = [r for r in [await store.get_request(q) for q in made] if r is not None]
    soonest = [r.request_id for r in sorted(records, key=lambda r: (r.expires_at, r.request_id))]
    async with client(store) as http:
        first = (await http.get("/api/v1/requests?order=expires&limit=2", headers=auth)).json()
        cursor = first["next_cursor"]
        rest = await http.get(
            f"/api/v1/requests?order=expires&limit=2&cursor={cursor}", headers=auth
        )
        shown = [item["request_id"] for item in [*first["items"], *rest.json()["items"]]]
        assert shown == soonest and rest.json()["next_cursor"] is None
        for query in (
            "tool=drop_table",
            "rule=gate-drops",
            "agent=dba",
            "tool=drop_table&agent=dba",
        ):
            found = (await http.get(f"/api/v1/requests?{query}", headers=auth)).json()
            assert [item["request_id"] for item in found["items"]] == soonest, query
        for query in ("tool=send_email", "rule=other", "agent=nobody"):
            found = (await http.get(f"/api/v1/requests?{query}", headers=auth)).json()
            assert found == {"items": [], "next_cursor": None}, query
