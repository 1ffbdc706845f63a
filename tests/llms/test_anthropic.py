"""The Anthropic adapter against a real local HTTP server speaking the Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, Reply, anthropic_sse_reply, error_reply, json_reply

from afk.errors import ConfigurationError
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
from afk.llms._http import ProviderAuthError, ProviderConnectionError, ProviderServerError
from afk.llms.anthropic import AnthropicModel

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
            ToolCall("drop_table", {"name": "old_logs"}, "toolu_1"),
            ToolCall("drop_table", {"name": "old_audit"}, "toolu_2"),
        ),
    ),
    ToolMessage(tool_call_id="toolu_1", tool_name="drop_table", content="dropped"),
    ToolMessage(tool_call_id="toolu_2", tool_name="drop_table", content="denied", is_error=True),
]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with FakeServer() as fake:
        yield fake


def make(server: FakeServer, **kwargs: Any) -> AnthropicModel:
    options: dict[str, Any] = {"api_key": "ak-test", "retry_base_s": 0.001, **kwargs}
    return AnthropicModel("claude-sonnet-4-5", base_url=server.url, max_tokens=512, **options)


def message(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 100},
    }


async def test_complete_sends_system_tool_turn_and_merged_results(server: FakeServer) -> None:
    server.queue(json_reply(message([{"type": "text", "text": "Done."}])))

    response = await make(server).complete(TRANSCRIPT, [DROP_TABLE])

    assert response.text == "Done." and response.tool_calls == []
    assert response.usage is not None
    assert response.usage.cost_usd == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    [request] = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "ak-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "You are a DBA.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Drop old_logs and old_audit."}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Dropping both."},
                    {"type": "tool_use", "id": "toolu_1", "name": "drop_table",
                     "input": {"name": "old_logs"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "drop_table",
                     "input": {"name": "old_audit"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "dropped",
                     "is_error": False},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "denied",
                     "is_error": True},
                ],
            },
        ],
        "tools": [
            {"name": "drop_table", "description": "Drop a table.",
             "input_schema": DROP_TABLE.parameters},
        ],
    }  # fmt: skip


async def test_user_note_after_tool_results_joins_their_message(server: FakeServer) -> None:
    server.queue(json_reply(message([{"type": "text", "text": "ok"}])))
    transcript = [*TRANSCRIPT, UserMessage(content="Also vacuum.")]

    await make(server).complete(transcript, [])

    last = server.bodies[0]["messages"][-1]
    assert last["role"] == "user"
    assert [b["type"] for b in last["content"]] == ["tool_result", "tool_result", "text"]
    assert "tools" not in server.bodies[0]


async def test_complete_parses_parallel_tool_use(server: FakeServer) -> None:
    server.queue(
        json_reply(
            message(
                [
                    {"type": "text", "text": "Both."},
                    {"type": "tool_use", "id": "t1", "name": "drop_table", "input": {"name": "a"}},
                    {"type": "tool_use", "id": "t2", "name": "drop_table", "input": {"name": "b"}},
                ]
            )
        )
    )
    response = await make(server).complete([UserMessage(content="go")], [DROP_TABLE])
    assert response.text == "Both."
    assert response.tool_calls == [
        ToolCall("drop_table", {"name": "a"}, "t1"),
        ToolCall("drop_table", {"name": "b"}, "t2"),
    ]


def stream_events(*middle: dict[str, Any], stop: bool = True) -> list[dict[str, Any]]:
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "role": "assistant", "content": [],
                    "usage": {"input_tokens": 42, "output_tokens": 1}},
    }  # fmt: skip
    end: list[dict[str, Any]] = [
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return [start, {"type": "ping"}, *middle, *(end if stop else [])]


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **fields: str) -> dict[str, Any]:
    kind = "text_delta" if "text" in fields else "input_json_delta"
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


async def test_stream_text_and_parallel_tool_use(server: FakeServer) -> None:
    tool = {"type": "tool_use", "input": {}, "name": "drop_table"}
    server.queue(
        anthropic_sse_reply(
            stream_events(
                block_start(0, {"type": "text", "text": ""}),
                delta(0, text="Dropping"),
                delta(0, text=" both."),
                {"type": "content_block_stop", "index": 0},
                block_start(1, {**tool, "id": "t1"}),
                delta(1, partial_json=""),
                delta(1, partial_json='{"name": "a'),
                delta(1, partial_json='"}'),
                {"type": "content_block_stop", "index": 1},
                block_start(2, {**tool, "id": "t2"}),
                delta(2, partial_json='{"name": "b"}'),
                {"type": "content_block_stop", "index": 2},
            )
        )
    )

    items = [item async for item in make(server).stream(TRANSCRIPT, [DROP_TABLE])]

    assert items[:2] == ["Dropping", " both."] and len(items) == 3
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.text == "Dropping both."
    assert final.tool_calls == [
        ToolCall("drop_table", {"name": "a"}, "t1"),
        ToolCall("drop_table", {"name": "b"}, "t2"),
    ]
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (42, 30)
    body = server.bodies[0]
    assert body["stream"] is True
    assert body["messages"][2]["content"][1]["tool_use_id"] == "toolu_2"


async def test_stream_error_event_maps_by_type(server: FakeServer) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server.queue(anthropic_sse_reply(stream_events(error, stop=False)))
    with pytest.raises(ProviderServerError, match="overloaded_error"):
        async for _ in make(server).stream([UserMessage(content="x")], []):
            pass


async def test_stream_cut_short_is_a_connection_error(server: FakeServer) -> None:
    server.queue(
        anthropic_sse_reply(
            stream_events(block_start(0, {"type": "text", "text": ""}), delta(0, text="Hi"),
                          stop=False)
        )
    )  # fmt: skip
    seen: list[object] = []
    with pytest.raises(ProviderConnectionError, match="message_stop"):
        async for item in make(server).stream([UserMessage(content="x")], []):
            seen.append(item)
    assert seen == ["Hi"]


async def test_529_overloaded_is_retried_403_is_not(server: FakeServer) -> None:
    server.queue(
        error_reply(529, "Overloaded", {"retry-after": "0"}),
        json_reply(message([{"type": "text", "text": "ok"}])),
        error_reply(403, "forbidden"),
    )
    model = make(server)
    assert (await model.complete([UserMessage(content="a")], [])).text == "ok"
    with pytest.raises(ProviderAuthError) as info:
        await model.complete([UserMessage(content="b")], [])
    assert info.value.provider == "anthropic" and len(server.requests) == 3


async def test_stream_open_retries_on_500(server: FakeServer) -> None:
    server.queue(
        Reply(status=500, body=b"upstream exploded"),
        anthropic_sse_reply(stream_events(block_start(0, {"type": "text"}), delta(0, text="ok"))),
    )
    items = [i async for i in make(server).stream([UserMessage(content="x")], [])]
    assert items[0] == "ok" and len(server.requests) == 2


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="set ANTHROPIC_API_KEY"):
        AnthropicModel("claude-x")
