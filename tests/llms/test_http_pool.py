"""One pooled httpx client per (provider, base URL): shared by the models named by string
across runs, closed by close_pools() (Runner.aclose) or when the event loop ends; connections
counted at a real keep-alive server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fakeserver import FakeServer, json_reply, openai_completion, openai_sse_reply

from afk.agents import Agent
from afk.core import Runner
from afk.llms import UserMessage, resolve_model
from afk.llms._http import ClientPool, close_pools, shared_pool
from afk.llms.openai import OpenAIModel


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with FakeServer(keep_alive=True) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-pool")
        yield fake


def said(text: str) -> object:
    return openai_sse_reply([{"choices": [{"index": 0, "delta": {"content": text}}]}])


async def test_runs_of_a_model_named_by_string_share_one_connection(server: FakeServer) -> None:
    server.queue(said("one"), said("two"), said("three"))
    agent = Agent("a", "openai:gpt-4o-mini")
    runner = Runner()
    for _ in range(2):
        result = await runner.run(agent, user_message="hi")
        assert result.state == "completed", result.error
    assert shared_pool().size() == 1
    first, second = (r.peer for r in server.requests)
    assert first == second  # one TCP connection for both runs

    await close_pools()  # what Runner.aclose() calls
    assert shared_pool().size() == 0
    assert (await runner.run(agent, user_message="hi")).state == "completed"
    assert server.requests[2].peer != first  # a new client, a new connection
    await close_pools()


async def test_one_client_per_provider_and_base_url() -> None:
    pool = ClientPool()
    async with (
        pool.lease("openai", "http://a/v1") as one,
        pool.lease("openai", "http://a/v1") as same,
    ):
        assert one is same
    async with (
        pool.lease("openai", "http://b/v1") as other,
        pool.lease("ollama", "http://a/v1") as third,
    ):
        assert len({id(one), id(other), id(third)}) == 3
    assert pool.size() == 3
    await pool.aclose()
    assert one.is_closed and other.is_closed and third.is_closed


async def test_a_client_closed_mid_call_finishes_the_call_first(server: FakeServer) -> None:
    pool = ClientPool()
    server.queue(json_reply(openai_completion({"content": "late"})))
    async with pool.lease("openai", server.url) as client:
        await pool.aclose()  # e.g. another runner sharing the pool closes
        assert not client.is_closed
        response = await client.post(server.url + "/v1/chat/completions", json={})
        assert response.status_code == 200
    assert client.is_closed
    async with pool.lease("openai", server.url) as fresh:
        assert fresh is not client


def test_each_event_loop_gets_its_own_clients_closed_when_it_ends() -> None:
    pool = ClientPool()
    seen: list[httpx.AsyncClient] = []

    async def lease() -> None:
        async with pool.lease("openai", "http://h/v1") as client:
            seen.append(client)

    asyncio.run(lease())
    asyncio.run(lease())
    first, second = seen
    assert first is not second  # a dead loop's connections are never reused
    assert first.is_closed and second.is_closed  # asyncio.run's shutdown closed them


async def test_pooled_clients_keep_no_cookies(server: FakeServer) -> None:
    cookie = {"Set-Cookie": "__lb=tenant-a; Path=/"}
    server.queue(
        json_reply(openai_completion({"content": "a"}), headers=cookie),
        json_reply(openai_completion({"content": "b"})),
    )
    pool = ClientPool()
    base = server.url + "/v1"
    for key in ("sk-tenant-a", "sk-tenant-b"):
        model = OpenAIModel("gpt-4o-mini", api_key=key, base_url=base, pool=pool)
        await model.complete([UserMessage(content="hi")], [])
    assert "cookie" not in server.requests[1].headers
    assert server.requests[0].peer == server.requests[1].peer
    await pool.aclose()


def test_models_built_from_names_use_the_shared_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    for name in ("gpt-4o", "claude-sonnet-4-5", "ollama:llama3.2"):
        model = resolve_model(name)
        assert model._transport._pool is shared_pool(), name  # type: ignore[attr-defined]
    assert OpenAIModel("gpt-4o")._transport._pool is None  # built by hand: per call, as before
