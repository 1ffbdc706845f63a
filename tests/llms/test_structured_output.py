"""Agent(output_type=...): the schema each provider is given, the validated RunResult.output,
and the bounded retry message when the model's answer does not validate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, anthropic_sse_reply, openai_sse_reply
from pydantic import BaseModel
from run_support import run

from afk.agents import Agent
from afk.errors import ConfigurationError
from afk.llms import ModelResponse, ScriptedModel, ToolCall, UserMessage
from afk.llms._output import RETRY_HEADER, Output, strict_schema
from afk.llms.anthropic import OUTPUT_TOOL, AnthropicModel, take_output
from afk.llms.openai import OpenAIModel
from afk.tools import tool


class Refund(BaseModel):
    order_id: str
    amount: float


class Draft(BaseModel):
    title: str
    note: str | None = None  # optional: strict mode wants every property required


@tool
def lookup(order_id: str) -> str:
    """Look an order up.

    Args:
        order_id: the order
    """
    return f"order {order_id}: 5.00"


GOOD = '{"order_id": "A1", "amount": 5}'


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def retries_in(messages: list[Any]) -> list[str]:
    return [
        m.content
        for m in messages
        if isinstance(m, UserMessage) and m.content.startswith(RETRY_HEADER)
    ]


async def test_a_valid_answer_is_the_results_output() -> None:
    model = ScriptedModel([ToolCall("lookup", {"order_id": "A1"}), GOOD])
    result = await run(Agent("a", model, tools=[lookup], output_type=Refund))
    assert result.state == "completed", result.error
    assert result.output == Refund(order_id="A1", amount=5.0)
    assert result.final_text == GOOD
    [spec, _] = model.outputs
    assert spec is not None and spec.name == "Refund" and spec.strict and not spec.wrapped
    assert spec.schema["additionalProperties"] is False


async def test_without_output_type_the_output_is_none() -> None:
    model = ScriptedModel(["plain"])
    result = await run(Agent("a", model))
    assert (result.output, model.outputs) == (None, [None])


async def test_an_invalid_answer_goes_back_to_the_model_naming_the_errors() -> None:
    model = ScriptedModel(["no json here", '{"order_id": "A1"}', GOOD])
    result = await run(Agent("a", model, output_type=Refund))
    assert result.state == "completed", result.error
    assert result.output == Refund(order_id="A1", amount=5.0)
    first, second = retries_in(result.messages)
    assert "Invalid JSON" in first
    assert "- amount: Field required" in second
    assert '"required": ["order_id", "amount"]' in second  # the schema, to answer against


async def test_retries_are_bounded_then_the_run_fails_clearly() -> None:
    model = ScriptedModel(["nope", '{"amount": "x"}', GOOD])
    result = await run(Agent("a", model, output_type=Refund, max_output_retries=1))
    assert result.state == "failed" and result.output is None
    assert result.error is not None
    assert result.error.startswith(
        "OutputValidationError: the model's answer did not validate as Refund after "
        "max_output_retries=1 retries: validation errors:\n"
    )
    assert "- order_id: Field required" in result.error
    assert len(model.outputs) == 2  # the first answer and one retry, no more


async def test_zero_retries_fails_on_the_first_invalid_answer() -> None:
    model = ScriptedModel(["nope"])
    result = await run(Agent("a", model, output_type=Refund, max_output_retries=0))
    assert result.state == "failed" and len(model.outputs) == 1


async def test_a_type_that_is_not_an_object_is_wrapped_and_unwrapped() -> None:
    model = ScriptedModel(['{"result": [1, 2]}'])
    result = await run(Agent("a", model, output_type=list[int]))
    assert result.output == [1, 2]
    [spec] = model.outputs
    assert spec is not None and spec.wrapped and spec.schema["required"] == ["result"]


def test_optional_fields_make_the_schema_non_strict() -> None:
    spec = Output(Draft).spec
    assert not spec.strict and "additionalProperties" not in spec.schema
    nested = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/I"}}},
        "required": ["items"],
        "$defs": {
            "I": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        },
    }
    strict = strict_schema(nested)
    assert strict is not None and strict["$defs"]["I"]["additionalProperties"] is False
    assert "additionalProperties" not in nested  # the input is left alone


def test_agent_arguments_are_checked() -> None:
    class NoSchema:
        pass

    with pytest.raises(ConfigurationError, match="has no JSON schema pydantic can build"):
        Agent("a", ScriptedModel(["x"]), output_type=NoSchema)
    with pytest.raises(ConfigurationError, match="max_output_retries must be an int >= 0"):
        Agent("a", ScriptedModel(["x"]), output_type=Refund, max_output_retries=-1)


# -- OpenAI: response_format json_schema ----------------------------------------------------------
def text_chunks(text: str) -> Any:
    return openai_sse_reply([{"choices": [{"index": 0, "delta": {"content": text}}]}])


async def test_openai_gets_a_strict_json_schema_and_the_retry(server: FakeServer) -> None:
    server.queue(text_chunks('{"order_id": 7}'), text_chunks(GOOD))
    model = OpenAIModel("gpt-4o-mini", api_key="sk", base_url=server.url + "/v1")
    result = await run(Agent("a", model, output_type=Refund))
    assert result.state == "completed", result.error
    assert result.output == Refund(order_id="A1", amount=5.0)
    first, second = server.bodies
    assert first["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Refund",
            "strict": True,
            "schema": {
                "type": "object",
                "title": "Refund",
                "properties": {
                    "order_id": {"type": "string", "title": "Order Id"},
                    "amount": {"type": "number", "title": "Amount"},
                },
                "required": ["order_id", "amount"],
                "additionalProperties": False,
            },
        },
    }
    retry = second["messages"][-1]
    assert retry["role"] == "user" and retry["content"].startswith(RETRY_HEADER)
    assert "- order_id: Input should be a valid string" in retry["content"]
    assert "- amount: Field required" in retry["content"]


# -- Anthropic: the output tool -------------------------------------------------------------------
def output_tool_stream(arguments: dict[str, Any]) -> Any:
    block = {"type": "tool_use", "id": "toolu_9", "name": OUTPUT_TOOL, "input": {}}
    return anthropic_sse_reply(
        [
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": 3, "output_tokens": 1}},
            },
            {"type": "content_block_start", "index": 0, "content_block": block},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": json.dumps(arguments)},
            },
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "usage": {"output_tokens": 9}},
            {"type": "message_stop"},
        ]
    )


async def test_anthropic_answers_through_the_output_tool(server: FakeServer) -> None:
    server.queue(output_tool_stream({"order_id": "A1", "amount": 5}))
    model = AnthropicModel("claude-sonnet-4-5", api_key="ak", base_url=server.url)
    result = await run(Agent("a", model, tools=[lookup], output_type=Refund))
    assert result.state == "completed", result.error
    assert result.output == Refund(order_id="A1", amount=5.0)
    assert result.tool_executions == []  # the output tool is not a tool call of the run
    [body] = server.bodies
    assert [t["name"] for t in body["tools"]] == ["lookup", OUTPUT_TOOL]
    assert body["tools"][1]["input_schema"]["required"] == ["order_id", "amount"]
    assert body["tool_choice"] == {"type": "any"}  # a tool, and so an answer, every turn


def test_the_output_tool_next_to_real_calls_waits_for_them() -> None:
    real = ToolCall("lookup", {"order_id": "A1"}, "t1")
    answer = ToolCall(OUTPUT_TOOL, {"order_id": "A1", "amount": 5}, "t2")
    assert take_output(ModelResponse(tool_calls=[real, answer])).tool_calls == [real]
    only = take_output(ModelResponse(tool_calls=[answer]))
    assert only.tool_calls == [] and only.text is not None and json.loads(only.text)["amount"] == 5
