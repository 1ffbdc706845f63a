"""The application the durable-run CLI tests pause and resume: ``--app tests.cli.durable_app:app``.

Also the tests' helpers: starting paused runs through the Python API, running ``afk`` in
this process or in a fresh one, and reading the refund tool's side-effect file (shared
across processes, so the tests can count executions wherever they happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.cli.main import main
from afk.core import Runner, RunnerConfig, RunResult
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

REPO = Path(__file__).resolve().parents[2]
APP = "tests.cli.durable_app:app"
SIDE_EFFECTS = "AFK_TEST_SIDE_EFFECTS"
BIG_REFUND_REASON = "Refunds over 100 need finance sign-off."


@tool
def refund(amount: int, note: str = "") -> str:
    """Refund a customer.

    Args:
        amount: How much to refund.
        note: Why.
    """
    with open(os.environ[SIDE_EFFECTS], "a", encoding="utf-8") as out:
        out.write(json.dumps({"amount": amount, "note": note}) + "\n")
    return f"refunded {amount}"


# Amounts pick the rule, so one agent and one policy cover every kind of request.
policy = PolicyEngine(
    [
        PolicyRule(
            "big-refunds",
            tool="refund",
            when={"amount": {"gt": 100}},
            action="request_approval",
            reason=BIG_REFUND_REASON,
        ),
        PolicyRule(
            "ask-why",
            tool="refund",
            when={"amount": {"gt": 10, "lte": 100}},
            action="request_user_input",
            reason="Why is this refund needed?",
        ),
        PolicyRule(
            "ask-note",
            tool="refund",
            when={"amount": {"lte": 10}},
            action="request_user_input",
            reason="Note for the customer?",
            input_target_arg="note",
        ),
    ]
)


def billing_agent(**args: Any) -> Agent:
    """The scripted model picks its turn from the conversation, so any amount resumes fine."""
    call = ToolCall("refund", args or {"amount": 250})
    return Agent("billing", ScriptedModel([call, "Done."]), "You refund.", tools=[refund])


def app() -> dict[str, Any]:
    """Shape (c) of APP: a factory, so each command gets a runner on the current AFK_STORE."""
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"))
    return {"runner": runner, "agents": [billing_agent()]}


# -- test helpers ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Env:
    db: Path
    effects: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def executions(self) -> list[dict[str, Any]]:
        if not self.effects.exists():
            return []
        return [json.loads(line) for line in self.effects.read_text().splitlines()]


def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    env = Env(db=tmp_path / "runs.db", effects=tmp_path / "effects.jsonl")
    monkeypatch.setenv("AFK_STORE", env.url)
    monkeypatch.setenv(SIDE_EFFECTS, str(env.effects))
    monkeypatch.setenv("AFK_USER", "alice")  # ignored since decisions are by the OS account
    monkeypatch.chdir(REPO)  # APP import paths are relative to the current directory
    return env


def start(env: Env, user_message: str = "refund", **args: Any) -> RunResult:
    """Start a run through the Python API; with the policy above it pauses."""

    async def go() -> RunResult:
        runner = Runner(policy, config=RunnerConfig(interaction_mode="external"), store=env.url)
        try:
            return await runner.run(billing_agent(**args), user_message=user_message)
        finally:
            assert runner.store is not None
            await runner.store.close()

    result = asyncio.run(go())
    assert result.state == "paused", result
    return result


def request_id(result: RunResult) -> str:
    [request] = result.pending_requests
    return request.request_id


@dataclass(frozen=True)
class Out:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def afk(*argv: str) -> Out:
    """``afk ARGV`` in this process: fast, for everything but exit paths and signals."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Out(code, out.getvalue(), err.getvalue())


def afk_process(*argv: str, timeout: float = 60) -> Out:
    """``python -m afk ARGV`` in a fresh process (it inherits the test's environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "afk", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Out(proc.returncode, proc.stdout, proc.stderr)
