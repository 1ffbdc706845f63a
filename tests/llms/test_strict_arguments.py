"""Tool-call arguments are read strictly: NaN, ±Infinity, out-of-range numbers and repeated keys
never reach a rule as something it cannot compare (or as one of two readings of the text).

A bad arguments text does not fail the model call: the adapter returns the call with
``ToolCall.error`` naming the argument and the problem, and empty arguments.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, Reply, anthropic_sse_reply, json_reply, openai_sse_reply
from test_litellm import FakeLiteLLM

from afk.canonical import (
    canonical_json,
    check_json,
    marked_loads,
    normalize,
    sha256_hex,
    strict_loads,
    unmarked,
)
from afk.errors import AfkError, InvalidArgumentsError
from afk.llms import ModelResponse, ToolCall, UserMessage
from afk.llms.anthropic import AnthropicModel
from afk.llms.litellm import LiteLLMModel
from afk.llms.openai import OpenAIModel

GO = [UserMessage(content="go")]

# (arguments text, the error the call carries)
REFUSED = [
    ('{"amount": NaN}', "amount: NaN is not allowed: send a finite number"),
    ('{"amount": Infinity}', "amount: Infinity is not allowed: send a finite number"),
    ('{"amount": -Infinity}', "amount: -Infinity is not allowed: send a finite number"),
    ('{"amount": 1e400}', "amount: 1e400 is out of range: send a finite number"),
    ('{"amount": 1, "amount": 1000}', "amount: duplicate key: send each key once"),
    (
        '{"items": [{"price": 1}, {"price": 2}, {"price": NaN}]}',
        "items[2].price: NaN is not allowed: send a finite number",
    ),
    ('{"a": {"b": 1, "b": 2}}', "a.b: duplicate key: send each key once"),
    ('{"amount": 5', "not valid JSON (Expecting ',' delimiter at line 1 column 13)"),
    ("[1, 2]", "arguments must be a JSON object, got an array"),
]


# -- the canonical module ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "error"), REFUSED[:7])
def test_strict_loads_refuses_nan_infinity_and_repeated_keys_naming_the_path(
    text: str, error: str
) -> None:
    with pytest.raises(InvalidArgumentsError) as info:
        strict_loads(text, what="refund arguments")
    assert str(info.value) == f"refund arguments: {error}"
    assert info.value.detail == error
    assert info.value.path == error.split(":")[0]
    assert isinstance(info.value, AfkError) and isinstance(info.value, ValueError)


def test_strict_loads_reads_ordinary_json_and_refuses_what_is_not_json() -> None:
    assert strict_loads('{"a": [1, 2.5, "x", null, true]}', what="t") == {
        "a": [1, 2.5, "x", None, True]
    }
    with pytest.raises(InvalidArgumentsError, match=r"^args: not valid JSON \(Expecting"):
        strict_loads("{oops", what="args")
    with pytest.raises(InvalidArgumentsError, match=r"^args: nested too deeply"):
        strict_loads("[" * 100_000 + "]" * 100_000, what="args")
    with pytest.raises(InvalidArgumentsError, match=r"^args: nested more than 100 levels"):
        strict_loads("[" * 150 + "]" * 150, what="args")


def test_marked_loads_reads_like_json_until_checked() -> None:
    text = '{"usage": NaN, "n": 1, "n": 2, "big": 1e999, "ok": [1.5]}'
    marked = marked_loads(text)
    with pytest.raises(InvalidArgumentsError, match=r"^usage: NaN is not allowed"):
        check_json(marked)
    plain = unmarked(marked)
    lenient = json.loads(text)
    assert math.isnan(plain["usage"]) and math.isnan(lenient["usage"])
    assert {k: v for k, v in plain.items() if k != "usage"} == {
        k: v for k, v in lenient.items() if k != "usage"
    }


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"amount": float("nan")}, "amount: NaN is not allowed"),
        ({"amount": float("-inf")}, "amount: -Infinity is not allowed"),
        ({"items": [1, {"price": float("inf")}]}, "items[1].price: Infinity is not allowed"),
        ({"when": object()}, "when: a object is not JSON"),
        ({"ids": {1, 2}}, "ids: a set is not JSON"),
        ({"nested": {3: "x"}}, "nested: key 3 is not a string"),
        ({"odd key": {"a.b": float("nan")}}, '["odd key"]["a.b"]: NaN is not allowed'),
    ],
)
def test_check_json_refuses_non_finite_numbers_non_string_keys_and_python_objects(
    value: Any, error: str
) -> None:
    with pytest.raises(InvalidArgumentsError) as info:
        check_json(value)
    assert str(info.value).startswith(error)
    assert info.value.path == error.split(": ")[0]


def test_check_json_accepts_json_data_and_ends_a_value_that_contains_itself() -> None:
    check_json({"a": [1, 2.5, "x", None, True, (3, 4)], "b": {"c": {}}})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidArgumentsError, match="nested more than"):
        check_json({"loop": loop})


def test_normalize_puts_every_string_and_key_in_nfc_and_refuses_keys_that_collide() -> None:
    decomposed = "cafe\u0301"  # "café" typed as e + combining accent
    assert normalize({decomposed: [decomposed, ("x",)], "n": 1}) == {
        "caf\u00e9": ["caf\u00e9", ["x"]],
        "n": 1,
    }
    with pytest.raises(InvalidArgumentsError) as info:
        normalize({"to": {"caf\u00e9": 1, decomposed: 2}})
    assert info.value.path == 'to["caf\u00e9"]'
    assert "duplicate key" in str(info.value)


def test_canonical_json_refuses_non_finite_numbers_so_none_is_ever_hashed() -> None:
    with pytest.raises(ValueError, match="amount: NaN is not allowed"):
        canonical_json({"amount": float("nan")})
    with pytest.raises(ValueError):
        sha256_hex([float("inf")])
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


# -- the adapters ----------------------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with FakeServer() as fake:
        yield fake


def openai(server: FakeServer) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", api_key="k", base_url=server.url + "/v1", max_retries=0)


def anthropic(server: FakeServer) -> AnthropicModel:
    return AnthropicModel("claude-sonnet-4-5", api_key="k", base_url=server.url, max_retries=0)


def completion(*calls: tuple[str, str]) -> dict[str, Any]:
    tool_calls = [
        {"id": cid, "type": "function", "function": {"name": "refund", "arguments": args}}
        for cid, args in calls
    ]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return {"choices": [{"index": 0, "message": message}]}


@pytest.mark.parametrize(("text", "error"), REFUSED)
async def test_openai_refuses_bad_arguments_on_the_call_and_keeps_the_others(
    server: FakeServer, text: str, error: str
) -> None:
    server.queue(json_reply(completion(("bad", text), ("good", '{"amount": 5}'))))

    response = await openai(server).complete(GO, [])

    assert response.tool_calls == [
        ToolCall("refund", {}, "bad", error=error),
        ToolCall("refund", {"amount": 5}, "good"),
    ]


async def test_openai_stream_refuses_a_repeated_key_split_across_chunks(
    server: FakeServer,
) -> None:
    def fragment(arguments: str, **head: str) -> dict[str, Any]:
        call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}, **head}
        if head:
            call["function"]["name"] = "refund"
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}

    server.queue(
        openai_sse_reply([fragment('{"amount": 1, ', id="c1"), fragment('"amount": 1000}')])
    )

    items = [item async for item in openai(server).stream(GO, [])]

    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.tool_calls == [
        ToolCall("refund", {}, "c1", error="amount: duplicate key: send each key once")
    ]


def anthropic_body(inputs: list[str]) -> bytes:
    """A Messages reply written by hand: json.dumps cannot repeat a key."""
    blocks = ",".join(
        f'{{"type": "tool_use", "id": "t{i}", "name": "refund", "input": {text}}}'
        for i, text in enumerate(inputs)
    )
    return (
        '{"id": "msg_1", "type": "message", "role": "assistant", "content": ['
        f'{{"type": "text", "text": "Refunding."}}, {blocks}], '
        '"usage": {"input_tokens": 10, "output_tokens": 5}}'
    ).encode()


@pytest.mark.parametrize(("text", "error"), REFUSED[:7])
async def test_anthropic_refuses_bad_tool_input_on_the_call_and_keeps_the_others(
    server: FakeServer, text: str, error: str
) -> None:
    body = anthropic_body([text, '{"amount": 5}'])
    server.queue(Reply(body=body, headers={"Content-Type": "application/json"}))

    response = await anthropic(server).complete(GO, [])

    assert response.text == "Refunding."
    assert response.tool_calls == [
        ToolCall("refund", {}, "t0", error=error),
        ToolCall("refund", {"amount": 5}, "t1"),
    ]
    assert response.usage is not None and response.usage.input_tokens == 10


async def test_anthropic_keeps_reading_its_envelope_leniently(server: FakeServer) -> None:
    # Outside tool inputs nothing is gated: a server quirk there must not fail the call.
    body = b'{"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],' + (
        b' "stop_sequence": NaN, "usage": {"input_tokens": 1, "input_tokens": 3}}'
    )
    server.queue(Reply(body=body, headers={"Content-Type": "application/json"}))

    response = await anthropic(server).complete(GO, [])

    assert response.text == "ab" and response.tool_calls == []
    assert response.usage is not None and response.usage.input_tokens == 3


async def test_anthropic_stream_refuses_nan_in_partial_json(server: FakeServer) -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 1}}}
    block = {"type": "tool_use", "id": "t1", "name": "refund", "input": {}}
    events = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": block},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"amount": Na'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "N}"},
        },
        {"type": "message_stop"},
    ]
    server.queue(anthropic_sse_reply(events))

    items = [item async for item in anthropic(server).stream(GO, [])]

    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.tool_calls == [
        ToolCall("refund", {}, "t1", error="amount: NaN is not allowed: send a finite number")
    ]


@pytest.fixture
def fake_litellm(monkeypatch: pytest.MonkeyPatch) -> FakeLiteLLM:
    module = FakeLiteLLM([])
    monkeypatch.setitem(sys.modules, "litellm", module)
    return module


async def test_litellm_refuses_bad_arguments_on_the_call(fake_litellm: FakeLiteLLM) -> None:
    fake_litellm.replies.append(completion(("c1", '{"amount": Infinity}')))

    response = await LiteLLMModel("x").complete(GO, [])

    assert response.tool_calls == [
        ToolCall("refund", {}, "c1", error="amount: Infinity is not allowed: send a finite number")
    ]


async def test_arguments_sent_as_an_object_instead_of_text_are_refused(
    server: FakeServer,
) -> None:
    reply = completion(("c1", "{}"))
    reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = {"amount": 5}
    server.queue(json_reply(reply))

    response = await openai(server).complete(GO, [])

    assert response.tool_calls == [
        ToolCall("refund", {}, "c1", error="arguments must be JSON text, got dict")
    ]
