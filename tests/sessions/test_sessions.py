"""Conversation threads without a store: runs on one thread_id continue one conversation,
one run at a time; run(messages=...) passes a history explicitly; a Session of your own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sessions_support import chat_agent, gated, roles

from afk.agents import ApprovalDecision
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig, Session
from afk.errors import ConfigurationError, ThreadBusyError
from afk.llms import SystemMessage, UserMessage
from afk.llms.messages import Message


async def test_a_thread_continues_the_conversation_of_its_earlier_runs() -> None:
    runner = Runner()
    first = await runner.run(chat_agent(), user_message="hi", thread_id="t-1")
    second = await runner.run(chat_agent(), user_message="again", thread_id="t-1")
    assert first.final_text == "heard hi (0 turns before)"
    assert second.final_text == "heard hi | again (1 turns before)"
    assert roles(second.messages) == [
        "system:You chat.",
        "user:hi",
        "assistant:heard hi (0 turns before)",
        "user:again",
        "assistant:heard hi | again (1 turns before)",
    ]
    other = await runner.run(chat_agent(), user_message="new", thread_id="t-2")
    assert other.final_text == "heard new (0 turns before)"
    alone = await runner.run(chat_agent(), user_message="solo")
    assert alone.final_text == "heard solo (0 turns before)"


async def test_an_approved_call_is_in_the_history_once() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(gated(), provider, RunnerConfig(interaction_mode="interactive"))
    task = asyncio.create_task(runner.run(chat_agent(), user_message="refund A-1", thread_id="t"))
    while not provider.pending():
        await asyncio.sleep(0.005)
    [request] = provider.pending()
    provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    done = await task
    assert done.state == "completed"
    later = await runner.run(chat_agent(), user_message="thanks", thread_id="t")
    history = roles(later.messages)
    assert history.count("assistant:['refund']") == 1
    assert history.count("tool:refunded A-1") == 1
    assert history[-1] == "assistant:heard refund A-1 | thanks (2 turns before)"


async def test_a_second_run_on_a_busy_thread_is_refused_and_runs_nothing() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(gated(), provider, RunnerConfig(interaction_mode="interactive"))
    waiting = asyncio.create_task(
        runner.run(chat_agent(), user_message="refund B-2", thread_id="busy")
    )
    while not provider.pending():
        await asyncio.sleep(0.005)
    with pytest.raises(ThreadBusyError) as refused:
        await runner.run(chat_agent(), user_message="hello?", thread_id="busy")
    assert refused.value.thread_id == "busy"
    assert refused.value.run_id == provider.pending()[0].run_id
    assert "one run per thread" in str(refused.value)
    handle = runner.run_stream(chat_agent(), user_message="streamed", thread_id="busy")
    with pytest.raises(ThreadBusyError):
        await handle.result()
    assert [e async for e in handle] == []  # nothing ran: not even run_started
    [request] = provider.pending()
    provider.resolve_approval(request.request_id, ApprovalDecision(kind="deny", approver="ann"))
    assert (await waiting).state == "completed"
    after = await runner.run(chat_agent(), user_message="now", thread_id="busy")
    assert after.final_text == "heard refund B-2 | now (2 turns before)"


async def test_a_failed_run_frees_the_thread_and_leaves_its_messages_out() -> None:
    runner = Runner()
    down = chat_agent()

    async def boom(messages: Sequence[Message], tools: object) -> None:
        raise RuntimeError("model down")

    down.model = type("Down", (), {"complete": staticmethod(boom)})()
    await runner.run(chat_agent(), user_message="before", thread_id="g")
    assert (await runner.run(down, user_message="lost", thread_id="g")).state == "failed"
    after = await runner.run(chat_agent(), user_message="after", thread_id="g")
    assert after.final_text == "heard before | after (1 turns before)"


async def test_messages_pass_a_history_explicitly() -> None:
    runner = Runner()
    first = await runner.run(chat_agent(), user_message="hi")
    second = await runner.run(chat_agent(), user_message="more", messages=first.messages)
    assert second.final_text == "heard hi | more (1 turns before)"
    assert [type(m).__name__ for m in second.messages].count("SystemMessage") == 1
    mine = [SystemMessage(content="ignored"), UserMessage(content="a"), UserMessage(content="b")]
    third = await runner.run(chat_agent(), user_message="c", messages=mine)
    assert third.final_text == "heard a | b | c (0 turns before)"
    assert third.messages[0].content == "You chat."


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"thread_id": "t", "messages": []}, "not both"),
        ({"messages": "hello"}, "must be a list"),
        ({"messages": [object()]}, "got object"),
        ({"messages": [UserMessage(content="a"), SystemMessage(content="b")]}, "SystemMessage"),
        ({"thread_id": " "}, "thread_id must be a non-empty string"),
        ({"thread_id": 7}, "thread_id must be a non-empty string"),
    ],
)
async def test_bad_history_arguments_are_refused_before_the_run(
    kwargs: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        await Runner().run(chat_agent(), user_message="x", **kwargs)  # type: ignore[arg-type]


class ListSession:
    """A Session of one's own: every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.turns: dict[str, list[Message]] = {}

    async def take(self, thread_id: str, *, run_id: str) -> None:
        self.calls.append(f"take {thread_id}")

    async def history(self, thread_id: str) -> list[Message]:
        self.calls.append(f"history {thread_id}")
        return list(self.turns.get(thread_id, []))

    async def add_turn(self, thread_id: str, *, run_id: str, messages: Sequence[Message]) -> None:
        self.calls.append(f"add {thread_id} {len(messages)}")
        self.turns.setdefault(thread_id, []).extend(messages)

    async def release(self, thread_id: str, *, run_id: str) -> None:
        self.calls.append(f"release {thread_id}")


async def test_a_session_of_ones_own_keeps_the_thread() -> None:
    mine = ListSession()
    assert isinstance(mine, Session)
    runner = Runner(session=mine)
    await runner.run(chat_agent(), user_message="a", thread_id="x")
    result = await runner.run(chat_agent(), user_message="b", thread_id="x")
    assert result.final_text == "heard a | b (1 turns before)"
    assert mine.calls == ["take x", "history x", "add x 2"] * 2


def test_a_session_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"must implement afk\.core\.Session"):
        Runner(session=object())  # type: ignore[arg-type]
