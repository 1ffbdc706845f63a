"""Library logging: run lifecycle records with their ids, and silence unless configured."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from traced_app import REFUND, refund_agent, refund_policy

from afk.agents import Agent, ApprovalDecision
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.core.events import ApprovalResolved
from afk.llms import ScriptedModel

HERE = Path(__file__).parent


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("afk")]


async def test_an_approved_run_logs_its_lifecycle_with_run_and_request_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(refund_policy(), provider, RunnerConfig(interaction_mode="interactive"))
    caplog.set_level(logging.INFO, logger="afk")
    task = asyncio.create_task(runner.run(refund_agent(), user_message="refund o-1"))
    async with asyncio.timeout(5):
        while not provider.pending():
            await asyncio.sleep(0.001)
        [request] = provider.pending()
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="alice")
        )
        result = await task
    run, rid = result.run_id, request.request_id
    assert lines(caplog) == [
        ("afk.run", logging.INFO, f"run {run} started: agent billing, model anthropic:claude-test"),
        ("afk.run", logging.INFO, f"run {run} paused: waiting for {rid}"),
        (
            "afk.approvals",
            logging.INFO,
            f"request {rid} of run {run} decided: allow by alice (human)",
        ),
        ("afk.run", logging.INFO, f"run {run} resumed: {rid} decided"),
        ("afk.run", logging.INFO, f"run {run} completed"),
    ]
    records = [r for r in caplog.records if r.name.startswith("afk")]
    assert {vars(r)["run_id"] for r in records} == {run}
    assert vars(records[1])["request_ids"] == (rid,)
    assert (vars(records[2])["request_id"], vars(records[2])["approver"]) == (rid, "alice")


async def test_an_expired_request_and_a_failed_run_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = InMemoryInteractiveProvider()
    mode = RunnerConfig(interaction_mode="interactive", approval_timeout_s=0.01)
    caplog.set_level(logging.INFO, logger="afk")
    # The refund expires unanswered; the model then has no turn left, so the run fails.
    result = await Runner(refund_policy(), provider, mode).run(
        refund_agent(REFUND), user_message="refund o-1"
    )
    assert result.state == "failed"
    [request_id] = [e.request_id for e in result.events if isinstance(e, ApprovalResolved)]
    found = lines(caplog)
    assert (
        "afk.approvals",
        logging.INFO,
        f"request {request_id} of run {result.run_id} expired: deny by its fallback",
    ) in found
    name, level, message = found[-1]
    assert (name, level) == ("afk.run", logging.WARNING)
    assert message.startswith(f"run {result.run_id} failed: ModelError: ScriptedModel")


async def test_headless_runs_log_at_info_and_debug_shows_each_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="afk")
    result = await Runner(refund_policy()).run(
        refund_agent(REFUND, "Not refunded."), user_message="refund o-1"
    )
    [request_id] = [e.request_id for e in result.events if isinstance(e, ApprovalResolved)]
    assert (
        "afk.approvals",
        logging.DEBUG,
        f"request {request_id} of run {result.run_id} opened: approval for refund "
        "(rule refunds-need-approval)",
    ) in lines(caplog)
    assert (
        "afk.approvals",
        logging.INFO,
        f"request {request_id} of run {result.run_id} decided: deny (fallback)",
    ) in lines(caplog)


def test_the_library_adds_no_handler_but_a_null_one() -> None:
    import afk.core  # noqa: F401  (the run loop is where afk logs)

    root = logging.getLogger("afk")
    assert [type(h) for h in root.handlers] == [logging.NullHandler]
    for name in ("afk.run", "afk.approvals", "afk.observability"):
        assert logging.getLogger(name).handlers == []


def test_nothing_is_printed_unless_the_app_configures_logging() -> None:
    # A failing run logs a WARNING; with no handler configured Python would print it to
    # stderr (logging.lastResort) but for afk's NullHandler.
    code = (
        "from afk.agents import Agent\n"
        "from afk.core import Runner\n"
        "from afk.llms import ScriptedModel\n"
        "r = Runner().run_sync(Agent('a', ScriptedModel([]), 'x'), user_message='hi')\n"
        "assert r.state == 'failed', r.state\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_logging_can_be_turned_off_per_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="afk")
    logging.getLogger("afk.run").setLevel(logging.ERROR)
    try:
        Runner().run_sync(Agent("a", ScriptedModel(["hi"]), "x"), user_message="hi")
    finally:
        logging.getLogger("afk.run").setLevel(logging.NOTSET)
    assert lines(caplog) == []
