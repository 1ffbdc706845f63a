"""`afk runs list|show` against a real SQLite store holding runs paused through the Python API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from durable_app import BIG_REFUND_REASON, Env, afk, afk_process, make_env, request_id, start

from afk.cli import _output


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    return make_env(tmp_path, monkeypatch)


def test_list_shows_paused_runs_with_their_pending_count(env: Env) -> None:
    first = start(env, amount=250)
    second = start(env, amount=300)
    result = afk("runs", "list")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == ["RUN", "AGENT", "STATUS", "UPDATED", "PENDING"]
    assert [row.split()[0] for row in rows] == [second.run_id, first.run_id]  # newest first
    assert all(row.split()[1:3] == ["billing", "paused"] and row.endswith("1") for row in rows)


def test_list_json_filters_by_status_and_limit(env: Env) -> None:
    paused = start(env, amount=250)
    start(env, amount=300)
    listed = afk("runs", "list", "--json", "--limit", "1").json()
    assert len(listed) == 1 and "snapshot" not in listed[0]
    everything = afk("runs", "list", "--json", "--status", "paused").json()
    assert {r["run_id"] for r in everything} >= {paused.run_id}
    assert all(r["pending_requests"] == 1 for r in everything)
    assert afk("runs", "list", "--json", "--status", "completed").json() == []
    assert afk("runs", "list", "--status", "completed").out == "no runs with status completed\n"
    assert afk("runs", "list", "--status", "sleeping").code == 2


def test_show_has_record_conversation_requests_and_events(env: Env) -> None:
    run = start(env, "refund order 7", amount=250, note="Order #7 — café")
    result = afk("runs", "show", run.run_id)
    assert result.code == 0, result.err
    out = result.out
    assert "status        paused" in out
    assert "user       refund order 7" in out
    assert 'calls refund({"amount":250,"note":"Order #7 — café"})' in out  # exact arguments
    assert request_id(run) in out and "pending" in out
    for event in ("run_started", "policy_decision", "approval_requested", "run_paused"):
        assert event in out
    assert f"by rule big-refunds ({BIG_REFUND_REASON})" in out


def test_show_json_parses_payloads(env: Env) -> None:
    run = start(env, amount=250)
    shown = afk("runs", "show", run.run_id, "--json").json()
    assert shown["run"]["status"] == "paused" and "snapshot" not in shown["run"]
    # Stored after the agent's instructions (the agent holds them).
    assert shown["snapshot"]["messages"][0] == {"content": "refund", "role": "user"}
    [request] = shown["requests"]
    assert request["request"]["tool_args"] == {"amount": 250, "note": ""}  # defaults shown
    assert [e["seq"] for e in shown["events"]] == list(range(1, len(shown["events"]) + 1))
    assert shown["events"][-1]["payload"]["type"] == "run_paused"


def test_show_unknown_run_is_not_found(env: Env) -> None:
    start(env, amount=250)
    result = afk("runs", "show", "run_nope")
    assert result.code == 1
    assert result.err == "afk: no run with id 'run_nope'\n"


def test_terminal_control_characters_in_run_text_are_escaped(env: Env) -> None:
    run = start(env, "refund \x1b[2J now\nplease", amount=250)
    out = afk("runs", "show", run.run_id).out
    assert "\x1b" not in out
    assert "refund \\u001b[2J now\\nplease" in out


def test_missing_store_is_a_usage_error_naming_both_ways(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AFK_STORE")
    result = afk_process("runs", "list")
    assert result.code == 2
    assert result.err == f"afk: {_output.NO_STORE}\n"
    assert "--store" in result.err and "AFK_STORE" in result.err


def test_store_flag_wins_and_a_missing_sqlite_file_is_refused(env: Env, tmp_path: Path) -> None:
    start(env, amount=250)
    other = tmp_path / "other.db"
    result = afk("runs", "list", "--store", f"sqlite:///{other}")
    assert result.code == 2
    assert f"no run store at {other}" in result.err
    assert not other.exists()  # reading never creates a store
    assert afk("runs", "list", "--store", "mysql://db").code == 2


def test_relative_times() -> None:
    now = time.time()
    assert _output.relative(now - 5, now) == "5s ago"
    assert _output.relative(now + 299.6, now) == "in 5m"
    assert _output.relative(now + 299, now) == "in 4m 59s"
    assert _output.relative(now - 3 * 3600 - 120, now) == "3h 2m ago"
    assert _output.expires(now - 60, now) == "expired 1m ago"
    assert _output.expires(now + 30 * 86400, now).startswith("20")  # far off: an ISO time
    assert _output.relative(None) == "-"
