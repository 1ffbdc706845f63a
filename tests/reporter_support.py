"""An agent whose tool asks a human for input (``ctx.request_input`` with a JSON schema), and
what the tool received: for the input-request tests of the API and the inbox."""

from __future__ import annotations

from typing import Any

from afk.agents import Agent
from afk.core import Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import ToolContext, tool

# The prompt and schema carry markup and a bidi override: the page must show both escaped.
PROMPT = "Who gets the <b>report</b> {title}?"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "description": "a team \u202e(not a person)"},
        "copies": {"type": "integer"},
    },
    "required": ["to"],
    "additionalProperties": False,
}
received: list[Any] = []  # what the tool got: the answer's value, or ("declined", reason)


@tool
async def send_report(title: str, ctx: ToolContext) -> str:
    """Send a report; a human names who gets it.

    Args:
        title: The report.
    """
    answer = await ctx.request_input(prompt=PROMPT.format(title=title), schema=SCHEMA)
    if not answer.approved:
        received.append(("declined", answer.reason))
        return f"not sent: {answer.reason}"
    received.append(answer.value)
    return f"sent {title} to {answer.value['to']}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    title = next(m.content for m in messages if isinstance(m, UserMessage))
    done = [m for m in messages if isinstance(m, ToolMessage)]
    if not done:
        return ToolCall("send_report", {"title": title})
    return ModelResponse(text=done[-1].content)


def reporter() -> Agent:
    return Agent("reporter", FunctionModel(_model, name="reporter"), "x", tools=[send_report])


def input_runner(store_url: str, *, timeout_s: float | None = None) -> Runner:
    config = RunnerConfig(interaction_mode="external", input_timeout_s=timeout_s)
    return Runner(config=config, store=store_url)
