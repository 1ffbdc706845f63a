"""``afk resume`` and ``afk worker``: continue paused runs with the application's own agents.

Resuming needs the agents (tools, models) and runner (policy, config) a run was started
with, which only the application has; APP names them the way uvicorn names an ASGI app.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib
import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from afk.agents.agent import Agent
from afk.approvals.display import HIDDEN_MARKER, Escaper
from afk.cli._output import common_options, json_line, open_cli_store, print_json, shorten
from afk.core.result import RunResult
from afk.core.runner import Runner
from afk.errors import (
    ConfigurationError,
    RunLockedError,
    RunNotFoundError,
    RunNotResumableError,
)
from afk.store import RunStore

APP_HELP = """\
APP is an import path MODULE:ATTR (ATTR may be dotted); the current directory is importable
first, as with uvicorn. ATTR is one of:
  (a) a Runner; the agents come from a list named `agents` in the same module;
  (b) an object, namespace or dict with `runner` (a Runner) and `agents` (a list of Agents),
      as attributes or keys;
  (c) a zero-argument callable returning (a) or (b); the command then closes the runner's
      store when done.
Runs are matched to agents by name, so pass the agents the runs were started with. The
store is --store, else the runner's own store, else $AFK_STORE.
"""
_APP_SHAPES = (
    "a Runner (with a module-level `agents` list), an object or dict with `runner` and "
    "`agents`, or a zero-argument callable returning one"
)
_EXIT_REFUSED = 1
_EXIT_ABORTED = 130


@dataclass(frozen=True, slots=True)
class App:
    runner: Runner
    agents: list[Agent]
    owned: bool  # built by a factory for this command, so the command closes its store


def register(subparsers: Any) -> None:
    """Add ``resume`` and ``worker`` to the ``afk`` command's sub-parsers."""
    common = common_options()
    app = argparse.ArgumentParser(add_help=False)
    app.add_argument("--app", required=True, metavar="APP", help="MODULE:ATTR, see below")
    resume = subparsers.add_parser(
        "resume",
        parents=[common, app],
        help="resume one paused run, or every ready one",
        description=(
            "Resume a paused run whose requests are decided (or expired), or with --ready\n"
            "every such run. Prints one line per run: id, state, final text; a run still\n"
            "waiting for a decision is reported as paused.\n\n"
            "Exit status: 0; 1 when the run is unknown, already ended, or claimed by\n"
            "another worker; 2 for usage, store or APP errors."
        ),
        epilog=APP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument("run", metavar="RUN", nargs="?", help="run id")
    resume.add_argument("--ready", action="store_true", help="resume every ready run")
    resume.set_defaults(func=resume_command)
    worker = subparsers.add_parser(
        "worker",
        parents=[common, app],
        help="resume runs as their decisions arrive, until stopped",
        description=(
            "Resume ready runs in a loop, printing a line per resumed run (with --json: one\n"
            "JSON object per line). SIGINT/SIGTERM stop it after the current pass; a second\n"
            "signal exits at once, leaving the run in progress to another worker once its\n"
            "lease expires. --once does one pass (its --json output is a list) and exits."
        ),
        epilog=APP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--poll", type=_seconds, default=0.5, metavar="S", help="seconds between polls (0.5)"
    )
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(func=worker_command)


# -- APP loading ---------------------------------------------------------------------------
def load_app(spec: str) -> App:
    """The runner and agents APP names; a ConfigurationError (one line) says what was wrong."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"APP must look like module:attr, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(
            f"APP {spec!r}: cannot import {module_name!r}: {_one_line(exc)}"
        ) from None
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ConfigurationError(f"APP {spec!r}: module {module_name!r} has no {attr!r}")
        found = getattr(found, part)
    return _shape(spec, module, found, called=False)


def _shape(spec: str, module: Any, found: Any, *, called: bool) -> App:
    if isinstance(found, Runner):
        if not hasattr(module, "agents"):
            raise ConfigurationError(
                f"APP {spec!r} is a Runner, but module {module.__name__!r} has no `agents` list"
            )
        return App(found, _agents(spec, module.agents), owned=called)
    pair = _runner_and_agents(found)
    if pair is not None:
        runner, agents = pair
        if not isinstance(runner, Runner):
            raise ConfigurationError(
                f"APP {spec!r}: `runner` is {_describe(runner)}, not an afk Runner"
            )
        return App(runner, _agents(spec, agents), owned=called)
    # Only functions and classes count as factories: calling any other callable (a Tool, a
    # model) just to see what it returns could run real side effects.
    if (inspect.isroutine(found) or inspect.isclass(found)) and not called:
        return _shape(spec, module, _call_factory(spec, found), called=True)
    what = f"returned {_describe(found)}" if called else f"is {_describe(found)}"
    raise ConfigurationError(f"APP {spec!r} {what}; expected {_APP_SHAPES}")


def _runner_and_agents(found: Any) -> tuple[Any, Any] | None:
    if isinstance(found, Mapping):
        return (found["runner"], found["agents"]) if {"runner", "agents"} <= found.keys() else None
    if hasattr(found, "runner") and hasattr(found, "agents"):
        return found.runner, found.agents
    return None


def _call_factory(spec: str, factory: Callable[..., Any]) -> Any:
    try:
        required = [
            p.name
            for p in inspect.signature(factory).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        required = []  # no signature to inspect (some builtins): just try the call
    if required:
        raise ConfigurationError(
            f"APP {spec!r} is a callable needing arguments ({', '.join(required)}); "
            f"expected {_APP_SHAPES}"
        )
    try:
        return factory()
    except Exception as exc:
        raise ConfigurationError(f"APP {spec!r}: calling it failed: {_one_line(exc)}") from None


def _agents(spec: str, value: Any) -> list[Agent]:
    if isinstance(value, Agent):
        value = [value]
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise ConfigurationError(f"APP {spec!r}: `agents` is {_describe(value)}, not a list")
    agents = list(value)
    wrong = [_describe(a) for a in agents if not isinstance(a, Agent)]
    if wrong or not agents:
        got = f"contains {wrong[0]}" if wrong else "is empty"
        raise ConfigurationError(f"APP {spec!r}: `agents` {got}; expected afk Agents")
    names = [a.name for a in agents]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        # Runs are matched to agents by name, so a duplicate would silently shadow one.
        raise ConfigurationError(f"APP {spec!r}: two agents are named {twice[0]!r}")
    return agents


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    text = f"{'an' if name[0] in 'AEIOUaeiou' else 'a'} {name}"
    return f"{text} with keys {sorted(map(str, value))}" if isinstance(value, Mapping) else text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


# -- running -------------------------------------------------------------------------------
def _prepare(args: argparse.Namespace, *, must_exist: bool) -> tuple[App, Runner, list[RunStore]]:
    """The APP's runner, on ``--store`` when given (or when it has no store of its own), and
    the stores this command must close."""
    app = load_app(args.app)
    runner, to_close = app.runner, []
    if args.store or runner.store is None:
        runner = copy.copy(runner)  # a shallow copy keeps the APP's runner (and subclass) intact
        runner.store = open_cli_store(args, must_exist=must_exist)
        to_close.append(runner.store)
    if app.owned and app.runner.store is not None:
        to_close.append(app.runner.store)
    return app, runner, to_close


async def _closing(stores: list[RunStore]) -> None:
    for store in stores:
        await store.close()


def resume_command(args: argparse.Namespace) -> int:
    if (args.run is None) != args.ready:
        raise ConfigurationError("give either a RUN id or --ready")
    app, runner, to_close = _prepare(args, must_exist=True)

    async def work() -> list[RunResult] | str:
        try:
            if args.ready:
                return await runner.resume_ready(app.agents)
            return [await _resume_one(runner, app.agents, args.run)]
        except (RunNotFoundError, RunNotResumableError, RunLockedError) as exc:
            return str(exc)
        finally:
            await _closing(to_close)

    outcome = asyncio.run(work())
    if isinstance(outcome, str):
        print(f"afk: {outcome}", file=sys.stderr)
        return _EXIT_REFUSED
    if args.json:
        print_json([_result_json(r) for r in outcome])
    else:
        print("\n".join(_result_line(r) for r in outcome) or "no runs ready to resume")
    return 0


async def _resume_one(runner: Runner, agents: list[Agent], run_id: str) -> RunResult:
    from afk.core._durable import ensure_ready

    assert runner.store is not None
    await ensure_ready(runner.store)
    record = await runner.store.load_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no stored run with id {run_id!r}")
    agent = next((a for a in agents if a.name == record.agent_name), None)
    if agent is None:
        names = ", ".join(repr(a.name) for a in agents)
        raise RunNotResumableError(
            f"run {run_id} belongs to agent {record.agent_name!r}; APP has {names}"
        )
    return await runner.resume(run_id, agent)


def worker_command(args: argparse.Namespace) -> int:
    if args.once:
        args.ready, args.run = True, None
        return resume_command(args)
    app, runner, to_close = _prepare(args, must_exist=False)
    assert runner.store is not None
    names = ", ".join(a.name for a in app.agents)
    print(
        f"afk worker: resuming runs of {names} from {runner.store.url}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        with _stop_on_signals(stop):
            try:
                await _work(runner, app.agents, args.poll, stop, json_lines=args.json)
            finally:
                await _closing(to_close)

    asyncio.run(main())
    print("afk worker: stopped", file=sys.stderr)
    return 0


async def _work(
    runner: Runner, agents: list[Agent], poll_s: float, stop: asyncio.Event, *, json_lines: bool
) -> None:
    """:meth:`Runner.work`'s loop, printing each resumed run (``work`` returns nothing)."""
    while not stop.is_set():
        results = await runner.resume_ready(agents)
        for result in results:
            print(json_line(_result_json(result)) if json_lines else _result_line(result))
            sys.stdout.flush()
        if not results:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            # Cancelling would end the run in progress as `cancelled` for good; exiting leaves
            # it paused-in-flight, and its lease lets another worker take it over.
            print("afk worker: aborted", file=sys.stderr, flush=True)
            os._exit(_EXIT_ABORTED)
        print("afk worker: stopping after the current pass", file=sys.stderr, flush=True)
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows, non-main thread
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _result_line(result: RunResult) -> str:
    if result.state == "paused":
        ids = ", ".join(r.request_id for r in result.pending_requests)
        detail = f"waiting for {len(result.pending_requests)} request(s): {ids}"
    elif result.state == "failed":
        detail = result.error or "-"
    else:
        detail = result.final_text or result.error or "-"
    esc = Escaper()
    line = f"{esc.text(result.run_id)}  {result.state:<9}  {shorten(detail, 100, esc)}"
    return f"{line}  {HIDDEN_MARKER}" if esc.escaped else line


def _result_json(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "state": result.state,
        "final_text": result.final_text,
        "error": result.error,
        "pending_requests": [r.request_id for r in result.pending_requests],
    }
