"""The OpenAI adapter against a real local HTTP server speaking Chat Completions."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fakeserver import (
    FakeServer,
    Reply,
    error_reply,
    json_reply,
    openai_sse_reply,
    unused_port,
)

from afk.llms import (
    AssistantMessage,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from afk.llms._http import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    RetryPolicy,
    SSEEvent,
    call_with_retries,
    error_for_status,
    parse_retry_after,
    parse_sse,
)
from afk.llms.openai import OpenAIModel

DROP_TABLE = ToolSpec(
    name="drop_table",
    description="Drop a table.",
    parameters={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
)

TRANSCRIPT: list[Message] = [
    SystemMessage(content="You are a DBA."),
    UserMessage(content="Drop old_logs and old_audit."),
    AssistantMessage(
        text="Dropping both.",
        tool_calls=(
            ToolCall("drop_table", {"name": "old_logs"}, "call_1"),
            ToolCall("drop_table", {"name": "old_audit"}, "call_2"),
        ),
    ),
    ToolMessage(tool_call_id="call_1", tool_name="drop_table", content="dropped"),
    ToolMessage(tool_call_id="call_2", tool_name="drop_table", content="denied", is_error=True),
]


def completion(message: dict[str, Any], usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}}],
        "usage": usage or {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeServer() as fake:
        yield fake


def make(server: FakeServer, **kwargs: Any) -> OpenAIModel:
    options: dict[str, Any] = {"api_key": "sk-test", "retry_base_s": 0.001, **kwargs}
    return OpenAIModel("gpt-4o-mini", base_url=server.url + "/v1", **options)


async def test_complete_sends_full_transcript_and_tool_schema(server: FakeServer) -> None:
    server.queue(json_reply(completion({"content": "Both handled."})))

    response = await make(server).complete(TRANSCRIPT, [DROP_TABLE])

    assert response.text == "Both handled."
    assert response.tool_calls == []
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 100)
    assert response.usage.cost_usd == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a DBA."},
            {"role": "user", "content": "Drop old_logs and old_audit."},
            {
                "role": "assistant",
                "content": "Dropping both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "drop_table", "arguments": '{"name": "old_logs"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "drop_table", "arguments": '{"name": "old_audit"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "dropped"},
            {"role": "tool", "tool_call_id": "call_2", "content": "denied"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "drop_table",
                    "description": "Drop a table.",
                    "parameters": DROP_TABLE.parameters,
                },
            }
        ],
    }


async def test_complete_parses_parallel_tool_calls(server: FakeServer) -> None:
    calls = [
        {
            "id": "a",
            "type": "function",
            "function": {"name": "drop_table", "arguments": '{"name":"x"}'},
        },
        {"id": "b", "type": "function", "function": {"name": "ping", "arguments": ""}},
    ]
    server.queue(json_reply(completion({"content": None, "tool_calls": calls})))

    response = await make(server).complete([UserMessage(content="go")], [])

    assert response.text is None
    assert response.tool_calls == [
        ToolCall("drop_table", {"name": "x"}, "a"),
        ToolCall("ping", {}, "b"),
    ]
    assert "tools" not in server.bodies[0]


async def test_bad_tool_arguments_are_the_calls_error_not_a_failed_model_call(
    server: FakeServer,
) -> None:
    calls = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]
    server.queue(json_reply(completion({"content": None, "tool_calls": calls})))
    response = await make(server).complete([UserMessage(content="go")], [])
    [call] = response.tool_calls
    assert (call.name, call.arguments, call.id) == ("f", {}, "a")
    assert call.error is not None and call.error.startswith("not valid JSON")


def chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def call_delta(index: int, arguments: str, **head: str) -> dict[str, Any]:
    function: dict[str, str] = {"arguments": arguments}
    if "name" in head:
        function["name"] = head["name"]
    fragment: dict[str, Any] = {"index": index, "function": function}
    if "id" in head:
        fragment.update(id=head["id"], type="function")
    return chunk({"tool_calls": [fragment]})


async def test_stream_yields_text_then_accumulated_parallel_calls(server: FakeServer) -> None:
    server.queue(
        openai_sse_reply(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Drop"}),
                chunk({"content": "ping both."}),
                call_delta(0, "", id="c0", name="drop_table"),
                call_delta(1, '{"na', id="c1", name="drop_table"),
                call_delta(0, '{"name": '),
                call_delta(1, 'me": "b"}'),
                call_delta(0, '"a"}'),
                {
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                },
            ]
        )
    )

    items = [item async for item in make(server).stream(TRANSCRIPT, [DROP_TABLE])]

    assert items[:2] == ["Drop", "ping both."]
    final = items[-1]
    assert isinstance(final, ModelResponse) and len(items) == 3
    assert final.text == "Dropping both."
    assert final.tool_calls == [
        ToolCall("drop_table", {"name": "a"}, "c0"),
        ToolCall("drop_table", {"name": "b"}, "c1"),
    ]
    assert final.usage is not None and final.usage.input_tokens == 7
    body = server.bodies[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][2]["tool_calls"][1]["id"] == "call_2"


async def test_429_with_retry_after_then_500_then_success(server: FakeServer) -> None:
    server.queue(
        error_reply(429, "slow down", {"Retry-After": "0.3"}),
        error_reply(500),
        json_reply(completion({"content": "ok"})),
    )
    started = time.monotonic()

    response = await make(server).complete([UserMessage(content="hi")], [])

    assert response.text == "ok"
    assert len(server.requests) == 3
    assert time.monotonic() - started >= 0.3  # Retry-After beat the tiny backoff base
    assert server.bodies[0] == server.bodies[2]


async def test_401_is_an_auth_error_and_never_retried(server: FakeServer) -> None:
    server.queue(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(ProviderAuthError) as info:
        await make(server).complete([UserMessage(content="hi")], [])
    assert len(server.requests) == 1
    assert info.value.status_code == 401 and info.value.provider == "openai"
    assert "Incorrect API key" in str(info.value) and info.value.body is not None


async def test_other_4xx_is_a_bad_request_and_never_retried(server: FakeServer) -> None:
    server.queue(error_reply(400, "bad schema"))
    with pytest.raises(ProviderBadRequestError):
        await make(server).complete([UserMessage(content="hi")], [])
    assert len(server.requests) == 1


async def test_retries_run_out(server: FakeServer) -> None:
    server.queue(*[error_reply(503) for _ in range(3)])
    with pytest.raises(ProviderServerError) as info:
        await make(server, max_retries=2).complete([UserMessage(content="hi")], [])
    assert len(server.requests) == 3 and info.value.status_code == 503


async def test_stream_open_is_retried_on_429(server: FakeServer) -> None:
    server.queue(error_reply(429), openai_sse_reply([chunk({"content": "hi"})]))
    items = [item async for item in make(server).stream([UserMessage(content="x")], [])]
    assert items[0] == "hi" and len(server.requests) == 2


async def test_stream_error_status_maps_like_complete(server: FakeServer) -> None:
    server.queue(error_reply(403, "no access"))
    with pytest.raises(ProviderAuthError):
        async for _ in make(server).stream([UserMessage(content="x")], []):
            pass


async def test_connection_refused_is_retried_then_mapped() -> None:
    model = OpenAIModel(
        "gpt-4o",
        api_key="k",
        base_url=f"http://127.0.0.1:{unused_port()}/v1",
        max_retries=1,
        retry_base_s=0.001,
    )
    with pytest.raises(ProviderConnectionError, match="connection failed"):
        await model.complete([UserMessage(content="hi")], [])


async def test_timeout_is_a_connection_error(server: FakeServer) -> None:
    server.queue(Reply(body=b"{}", delay_s=0.3))
    with pytest.raises(ProviderConnectionError, match="timed out"):
        await make(server, timeout_s=0.1, max_retries=0).complete([UserMessage(content="hi")], [])


async def test_openai_base_url_env_points_at_compatible_server(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    server.queue(json_reply(completion({"content": "from env"})))
    response = await OpenAIModel("my-local-model").complete([UserMessage(content="hi")], [])
    assert response.text == "from env"
    assert server.requests[0].headers["authorization"] == "Bearer sk-env"
    assert response.usage is not None and response.usage.cost_usd is None  # unknown price


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": later}) or 0) <= 31


def test_rate_limit_error_carries_retry_after() -> None:
    error = error_for_status("openai", 429, "{}", {"retry-after": "3"})
    assert isinstance(error, ProviderRateLimitError) and error.retry_after == 3.0


async def test_stream_without_any_chunk_is_an_error(server: FakeServer) -> None:
    server.queue(json_reply(completion({"content": "not streamed"})))
    with pytest.raises(ProviderError, match="without any chunk"):
        async for _ in make(server).stream([UserMessage(content="x")], []):
            pass


async def test_parse_sse_fields_comments_and_multiline_data() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [": keep-alive", "event: a", "data: 1", "data:2", "", "", "data: tail\r"]:
            yield line

    events = [e async for e in parse_sse(lines())]
    assert events == [SSEEvent("a", "1\n2"), SSEEvent(None, "tail")]


async def test_retry_after_longer_than_the_limit_is_not_waited_for() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise ProviderRateLimitError("429", provider="x", retry_after=3600)

    with pytest.raises(ProviderRateLimitError):
        await call_with_retries(call, RetryPolicy(max_retries=3, base_s=0.001))
    assert calls == 1
