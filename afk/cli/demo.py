"""`afk demo`: the seed's change-manager scenario against a real (SQLite) database."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sqlite3
from pathlib import Path
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.approvals.requests import Request
from afk.cli._render import render
from afk.cli.console_provider import ConsoleInteractionProvider, resume_hint
from afk.core import Runner, RunnerConfig, TextDelta
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, register_model
from afk.tools import tool

DEMO_MODEL = "gpt-5.2-mini"


def _demo_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        for table in ("old_logs", "old_sessions", "customers"):
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, data TEXT)")


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [r[0] for r in rows]


def _build_tools(path: Path) -> list[Any]:
    @tool
    def list_tables() -> list[str]:
        """List the tables in the production database."""
        return _tables(path)

    @tool
    def drop_table(name: str) -> str:
        """Drop a table from the production database.

        Args:
            name: The table to drop.
        """
        if name not in _tables(path):
            raise ValueError(f"no table named {name!r}")
        with sqlite3.connect(path) as db:
            db.execute(f'DROP TABLE "{name}"')
        return f"dropped {name}"

    return [list_tables, drop_table]


def _scripted_change_manager(messages: list[Any], tools: list[Any]) -> Any:
    """Stands in for gpt-5.2-mini: list tables, drop the old ones, report."""
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        return ToolCall("list_tables", {})
    if len(results) == 1:
        old = [t for t in results[0].content.strip("[]").replace('"', "").split(", ") if "old" in t]
        return [ToolCall("drop_table", {"name": name}) for name in old]
    outcomes = "; ".join(m.content for m in results[1:])
    return ModelResponse(text=f"Finished the cleanup. Outcomes: {outcomes}")


policy = PolicyEngine(
    rules=[
        PolicyRule(
            rule_id="gate-destructive-ops",
            description="Require human approval for any destructive operation",
            condition=lambda event: (
                event.tool_name is not None
                and any(k in event.tool_name.lower() for k in ["delete", "drop", "remove"])
            ),
            action="request_approval",
            reason="Destructive operations require human approval before execution.",
        ),
    ]
)


DEMO_DIR = Path(".afk-demo")
DEMO_STORE = f"sqlite:///{DEMO_DIR / 'runs.db'}"
REQUEST = "Drop old production tables"


def _agent(db_path: Path) -> Agent:
    register_model(DEMO_MODEL, FunctionModel(_scripted_change_manager, name=DEMO_MODEL))
    return Agent(
        name="change-manager",
        model=DEMO_MODEL,
        instructions="You manage infrastructure changes. Always use available tools.",
        tools=_build_tools(db_path),
    )


def _database() -> Path:
    return Path(os.environ.get("AFK_DEMO_DATABASE", DEMO_DIR / "production.db"))


def app() -> dict[str, Any]:
    """For ``afk worker --app afk.cli.demo:app``: resumes the demo's paused runs."""
    db_path = _database()
    runner = Runner(
        policy_engine=policy,
        config=RunnerConfig(interaction_mode="external"),
        store=os.environ.get("AFK_STORE") or DEMO_STORE,
    )
    return {"runner": runner, "agents": [_agent(db_path)]}


def _runner(args: argparse.Namespace) -> Runner:
    if args.headless:
        mode = RunnerConfig(interaction_mode="headless", approval_fallback="deny")
        return Runner(policy_engine=policy, config=mode, store=args.store)
    if args.external:
        mode = RunnerConfig(interaction_mode="external", approval_timeout_s=args.timeout)
        return Runner(policy_engine=policy, config=mode, store=args.store)
    runners: list[Runner] = []

    async def release(request: Request) -> None:
        # Ctrl-C leaves the run paused: let a worker take it over now, not after the lease.
        for runner in runners:
            if runner.store is not None:
                await runner.store.release_lease(request.run_id, owner=runner.owner)

    words = f"--store {shlex.quote(args.store)}"
    console = ConsoleInteractionProvider(
        hint=lambda request: resume_hint(request, store=words, app="afk.cli.demo:app"),
        on_interrupt=release,
    )
    runners.append(
        Runner(
            policy_engine=policy,
            interaction_provider=console,
            config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=args.timeout),
            store=args.store,
        )
    )
    return runners[0]


async def _run(args: argparse.Namespace, db_path: Path) -> int:
    print(f"database {db_path}: tables {_tables(db_path)}")
    print(f"runs are stored in {args.store}")
    async with _runner(args) as runner:
        handle = runner.run_stream(_agent(db_path), user_message=REQUEST)
        async for event in handle:
            if isinstance(event, TextDelta):
                continue
            line = render(event)
            if line:
                print(f"  [{event.seq:>2}] {line}", flush=True)
        result = await handle.result()
    print(f"State: {result.state}")
    print(f"database {db_path}: tables {_tables(db_path)}")
    store = f"--store {args.store}"
    if result.state == "paused":
        print("\nThe run is saved and nothing is waiting in memory. From any shell:")
        print(f"  afk approvals list {store}")
        print(f"  afk approvals approve REQUEST {store}   (or: deny --reason ...)")
        print(f"  afk worker --once --app afk.cli.demo:app {store}")
    else:
        print(f"See the stored run: afk runs show {result.run_id} {store}")
    return 0 if result.state in ("completed", "stopped", "paused") else 1


def run_demo(args: argparse.Namespace) -> int:
    """``afk demo``: create the demo's SQLite database and run the change-manager scenario in the
    chosen mode. Returns the exit status."""
    db_path = Path(args.database) if args.database else _database()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if args.store.startswith("sqlite:///"):
        Path(args.store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _demo_database(db_path)
    return asyncio.run(_run(args, db_path))


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``afk`` command's sub-parsers."""
    p = subparsers.add_parser(
        "demo",
        help="run the change-manager scenario: a scripted agent asks to drop tables",
        description="A scripted gpt-5.2-mini asks to drop two tables of a real SQLite "
        "database; you approve or deny each at the terminal. Runs are durable: they are "
        f"kept in {DEMO_STORE} (see afk runs list).",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="no human: the fallback denies")
    mode.add_argument(
        "--external",
        action="store_true",
        help="pause and exit; approve with afk approvals, resume with afk worker",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait per approval")
    p.add_argument("--database", help=f"the demo's SQLite 'production' database ({DEMO_DIR}/)")
    p.add_argument(
        "--store",
        default=os.environ.get("AFK_STORE") or DEMO_STORE,
        help=f"run store (default: $AFK_STORE, else {DEMO_STORE})",
    )
    p.set_defaults(func=run_demo)


__all__ = [
    "DEMO_DIR",
    "DEMO_MODEL",
    "DEMO_STORE",
    "REQUEST",
    "app",
    "policy",
    "register",
    "run_demo",
]
