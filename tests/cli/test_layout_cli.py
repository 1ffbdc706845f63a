"""Tables fit the terminal (``$COLUMNS`` or its real width): long cells cut with ``…``, ids
shown short; ``--wide``, a pipe or a file get everything whole. Colour only on a terminal,
never with ``NO_COLOR`` or ``--no-color``, and never a way around the escaping."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from durable_app import Env, afk, make_env, refund, request_id, start
from pty_support import Terminal, env_with

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.cli._table import Layout, fit_widths, table
from afk.cli._term import Palette, cut, display_width, use_color
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall

LONG_NOTE = "refund for the order that arrived broken, " * 6
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return make_env(tmp_path, monkeypatch)


def test_list_fits_columns_cuts_with_an_ellipsis_and_shows_short_ids(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = start(env, amount=250, note=LONG_NOTE)
    monkeypatch.setenv("COLUMNS", "80")
    out = afk("approvals", "list")
    assert out.code == 0, out.err
    lines = out.out.splitlines()
    assert all(display_width(line) <= 80 for line in lines), out.out
    row = lines[1]
    stem = request_id(run).removeprefix("req_")
    assert row.startswith(f"{stem[:8]}  {run.run_id.removeprefix('run_')[:8]}  approval  refund")
    assert "…" in row and LONG_NOTE not in row
    assert afk("approvals", "show", stem[:8]).code == 0  # what is shown is typed back


def test_wide_and_piped_output_show_everything(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    run = start(env, amount=250, note=LONG_NOTE)
    piped = afk("approvals", "list")  # no COLUMNS and not a terminal: nothing to fit
    monkeypatch.setenv("COLUMNS", "80")
    wide = afk("approvals", "list", "--wide")
    for out in (piped, wide):
        assert out.code == 0, out.err
        row = out.out.splitlines()[1]
        assert row.startswith(f"{request_id(run)}  {run.run_id}  ")
        assert LONG_NOTE.strip() in row and "…" not in row


def test_runs_and_grants_fit_too(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    run = start(env, amount=250, note=LONG_NOTE)
    rid = request_id(run)
    assert afk("approvals", "approve", rid, "--grant-scope", "agent", "--grant-for", "60").code == 0
    monkeypatch.setenv("COLUMNS", "60")
    for argv in (["runs", "list"], ["grants", "list"], ["runs", "show", run.run_id[4:12]]):
        out = afk(*argv)
        assert out.code == 0, out.err
        assert all(display_width(line) <= 60 for line in out.out.splitlines()), out.out


def test_columns_that_cannot_fit_are_left_out_and_named(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(env, amount=250, note=LONG_NOTE)
    monkeypatch.setenv("COLUMNS", "70")
    lines = afk("approvals", "list", "--all").out.splitlines()
    assert lines[0].split() == ["REQUEST", "RUN", "KIND", "TOOL", "ARGS", "EXPIRES", "STATUS"]
    assert lines[-1] == "(not shown: RULE, REASON, DECISION, APPROVER; --wide shows all)"
    assert all(display_width(line) <= 70 for line in lines)


def test_wide_characters_count_two_columns() -> None:
    text = "返金" * 10  # 20 characters, 40 columns
    assert display_width(text) == 40
    assert display_width(cut(text, 11)) <= 11 and cut(text, 11).endswith("…")
    lay = Layout(width=30)
    out = table(["ID", "NOTE"], [["a", text]], layout=lay, flexible=["NOTE"])
    assert all(display_width(line) <= 30 for line in out.splitlines()), out


def test_fit_widths_shares_room_max_min_fairly() -> None:
    # Column 0 is fixed; 1 is narrow and stays whole; 2 and 3 are cut to one cap.
    widths = fit_widths([8, 5, 50, 40], [8, 5, 6, 6], {1, 2, 3}, 60)
    assert widths[:2] == [8, 5]
    assert sum(widths) + 2 * 3 == 60
    assert abs(widths[2] - widths[3]) <= 1
    # When not even the floors fit, the floors.
    assert fit_widths([8, 50, 50], [8, 6, 6], {1, 2}, 10) == [8, 6, 6]
    assert fit_widths([3, 4], [3, 4], {1}, 80) == [3, 4]


def test_color_is_off_unless_a_terminal_says_otherwise() -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    tty = Tty()
    assert use_color(tty, env={}) is True  # type: ignore[arg-type]
    assert use_color(tty, env={"NO_COLOR": "1"}) is False  # type: ignore[arg-type]
    assert use_color(tty, env={"NO_COLOR": ""}) is True  # type: ignore[arg-type]
    assert use_color(tty, env={"TERM": "dumb"}) is False  # type: ignore[arg-type]
    assert use_color(tty, no_color=True, env={}) is False  # type: ignore[arg-type]
    assert Palette(enabled=False).paint("x", "red") == "x"


def test_piped_output_has_no_color(env: Env) -> None:
    start(env)
    out = afk("approvals", "list", "--all")
    assert "\x1b" not in out.out


# -- on a terminal -------------------------------------------------------------------------
def _on_terminal(env: Env, *argv: str, **extra: str) -> str:
    term = Terminal("afk", *argv, env=env_with(AFK_STORE=env.url, **extra), columns=90)
    try:
        assert term.wait() == 0, term.output
        return term.output
    finally:
        term.close()


def test_a_terminal_gets_color_and_its_width(env: Env) -> None:
    start(env, amount=250, note=LONG_NOTE)
    colored = _on_terminal(env, "approvals", "list", "--all")
    assert "\x1b[1mREQUEST\x1b[0m" in colored
    assert "\x1b[33mpending\x1b[0m" in colored
    plain = SGR.sub("", colored)
    assert all(display_width(line) <= 90 for line in plain.splitlines()), plain
    assert "…" in plain


@pytest.mark.parametrize(("flag", "extra"), [(["--no-color"], {}), ([], {"NO_COLOR": "1"})])
def test_no_color_on_a_terminal(env: Env, flag: list[str], extra: dict[str, str]) -> None:
    start(env)
    out = _on_terminal(env, "approvals", "list", "--all", *flag, **extra)
    assert "pending" in out and "\x1b" not in out


def test_color_never_lets_hidden_characters_through(env: Env) -> None:
    tool, rule, reason = "refund\u202e\x1b[2K", "big\u202e-refunds\x1b]0;owned\x07", "ok\x9b[2J"
    model = ScriptedModel([ToolCall(tool, {"note\u200b": "pay \u202eevil\x9b[31m"}), "Done."])
    agent = Agent("billing", model, "You refund.", tools=[refund])
    engine = PolicyEngine([PolicyRule(rule, action="request_approval", reason=reason)])

    async def pause() -> None:
        runner = Runner(engine, config=RunnerConfig(interaction_mode="external"), store=env.url)
        try:
            assert (await runner.run(agent, user_message="refund")).state == "paused"
        finally:
            assert runner.store is not None
            await runner.store.close()

    asyncio.run(pause())
    out = _on_terminal(env, "approvals", "list", "--all")
    assert "\x1b[1m" in out  # coloured, and yet:
    rest = SGR.sub("", out)
    for raw in ("\u202e", "\u200b", "\x9b", "\x1b", "\x07"):
        assert raw not in rest
    assert "hidden or control characters were escaped" in rest
