"""What an approver's commands import, so their start-up stays fast (the wall times are in
benchmarks/bench_cli.py): deciding, listing and showing requests read and write rows with
afk.approvals._codec, never through pydantic, the run loop, its events or its snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_probe import LOOP, loaded, run
from durable_app import make_env, request_id, start

NOT_NEEDED = (
    "pydantic",
    "pydantic_core",
    "afk.core.events",
    "afk.core._snapshot",
    "afk.core._durable",
    "afk.core._run",
    "afk.core.runner",
    "afk.core.result",
    "afk.approvals.providers",
    "afk.agents.agent",
    "afk.agents.policy",
    "afk.llms",
    "afk.tools",
    "afk.observability",
    "opentelemetry",
    "httpx",
    "jsonschema",
    "psycopg",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["approvals", "approve", "{rid}", "--reason", "ok"],
        ["approvals", "approve", "{rid}", "--grant-scope", "agent", "--grant-for", "60"],
        ["approvals", "deny", "{rid}", "--stop-run"],
    ],
    ids=["approve", "approve-with-grant", "deny"],
)
def test_deciding_imports_neither_pydantic_nor_the_run_loop(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules, out = run(*(a.format(rid=rid) for a in argv))
    assert code == 0, out
    assert rid in out and "vote recorded" not in out  # it was decided, not refused
    assert loaded(modules, NOT_NEEDED) == []


# Built on first use: an approver's plain decision writes none of their records (each frozen
# dataclass costs about half a millisecond to create on Python 3.11).
NOT_BUILT = ("afk.store._other_records", "afk.store._seal_migration", "afk.core._timers")


@pytest.mark.parametrize("argv", [["approvals", "approve"], ["approvals", "deny"]])
def test_a_plain_decision_builds_no_record_it_does_not_write(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules, out = run(*argv, rid)
    assert code == 0 and rid in out, out
    assert loaded(modules, NOT_BUILT) == []


def test_answering_input_imports_neither_pydantic_nor_the_run_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env, amount=50))  # durable_app asks why for 10 < amount <= 100
    code, modules, out = run("input", rid, "the customer asked")
    assert code == 0, out
    assert loaded(modules, NOT_NEEDED) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["approvals", "list"],
        ["approvals", "list", "--all", "--json"],
        ["approvals", "show", "{rid}"],
    ],
    ids=["list", "list-all-json", "show"],
)
def test_reading_requests_imports_neither_pydantic_nor_the_run_loop(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    code, modules, out = run(*(a.format(rid=rid) for a in argv))
    assert code == 0, out
    assert rid.removeprefix("req_")[:8] in out  # listed (short ids leave "req_" out)
    assert loaded(modules, NOT_NEEDED) == []
    assert loaded(modules, LOOP) == []  # a SQLite store: no event loop either


def test_a_refused_decision_stays_off_the_run_loop_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal path loads the first decision (load_decision) to name it.
    env = make_env(tmp_path, monkeypatch)
    rid = request_id(start(env))
    assert run("approvals", "approve", rid)[0] == 0
    code, modules, out = run("approvals", "deny", rid)
    assert code == 1, out
    assert loaded(modules, NOT_NEEDED) == []
