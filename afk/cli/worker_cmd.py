"""``afk resume`` and ``afk worker``: continue paused runs with the application's own agents.

Resuming needs the agents (tools, models) and runner (policy, config) a run was started
with, which only the application has; APP names them the way uvicorn names an ASGI app.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import functools
import importlib
import inspect
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from afk.agents.agent import Agent
from afk.approvals.display import HIDDEN_MARKER, Escaper
from afk.cli._output import common_options, json_line, open_cli_store, print_json, shorten
from afk.core._worker import CannotResume, Resumed, TimerSent, TookOver, WorkerReport
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
    """What ``--app`` names: the runner to resume runs with, and the agents they started with."""

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
            "Resume ready runs as their decisions arrive, fire reminders and escalations, and\n"
            "take over at once the runs of a dead worker on this host. Prints a line per\n"
            "resumed run and per ready run it leaves alone, saying why (with --json: one JSON\n"
            "object per line). SIGINT/SIGTERM: start nothing new, let the runs in progress\n"
            "pause or end (tool bodies finish, leases are released), exit 0; a second signal\n"
            "exits at once, and a worker on this host takes those runs over. --once does one\n"
            "pass (its --json output is a list) and exits."
        ),
        epilog=APP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--poll",
        type=_seconds,
        default=0.5,
        metavar="S",
        help="safety-net poll in seconds (0.5); decisions wake the worker at once",
    )
    worker.add_argument(
        "--concurrency",
        type=_count,
        default=1,
        metavar="N",
        help="runs resumed at the same time (1)",
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


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


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
    """``afk resume RUN`` or ``afk resume --ready``: resume one run, or every run whose requests are
    all decided or expired, and print one line per run. Returns 0, or 1 when the run cannot be
    resumed."""
    if (args.run is None) != args.ready:
        raise ConfigurationError("give either a RUN id or --ready")
    app, runner, to_close = _prepare(args, must_exist=True)

    async def work() -> list[RunResult] | str:
        try:
            if args.ready:
                # Stderr lines: stdout stays the list of resumed runs (a JSON list with --json).
                report = functools.partial(_print_report, json_lines=False)
                return await runner.resume_ready(app.agents, on_report=report)
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
    from afk.cli import _ids
    from afk.core._durable import ensure_ready

    assert runner.store is not None
    await ensure_ready(runner.store)
    run_id = await _ids.resolve(runner.store, _ids.RUN, run_id) or run_id  # a unique prefix
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
    """``afk worker``: resume ready runs, fire reminders and escalations until stopped (``--once``:
    one pass, as ``afk resume --ready``). Returns 0."""
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
                await runner.work(
                    app.agents,
                    concurrency=args.concurrency,
                    poll_s=args.poll,
                    stop=stop,
                    on_report=functools.partial(_print_report, json_lines=args.json),
                )
            finally:
                await _closing(to_close)

    asyncio.run(main())
    print("afk worker: stopped", file=sys.stderr)
    return 0


def _print_report(report: WorkerReport, *, json_lines: bool) -> None:
    if json_lines:
        print(json_line(_report_json(report)))
    elif isinstance(report, Resumed):
        print(_result_line(report.result))
    else:
        print(_report_line(report), file=sys.stderr)
    sys.stdout.flush()


def _report_line(report: CannotResume | TookOver | TimerSent) -> str:
    esc = Escaper()
    if isinstance(report, CannotResume):
        until = f" until {_clock(report.until)}" if report.until is not None else ""
        line = f"afk worker: not resuming {esc.text(report.run_id)}: {report.reason}: "
        line += f"{shorten(report.detail, 200, esc)}{until}"
    elif isinstance(report, TookOver):
        line = f"afk worker: took over {esc.text(report.run_id)} from dead worker "
        line += esc.text(report.dead_owner)
    else:
        request = report.reminder.request
        line = f"afk worker: sent {report.reminder.kind} for request "
        line += f"{esc.text(request.request_id)} of run {esc.text(request.run_id)}"
    return f"{line}  {HIDDEN_MARKER}" if esc.escaped else line


def _report_json(report: WorkerReport) -> dict[str, Any]:
    if isinstance(report, Resumed):
        return {"kind": report.kind, **_result_json(report.result)}
    if isinstance(report, CannotResume):
        return {
            "kind": report.kind,
            "run_id": report.run_id,
            "reason": report.reason,
            "detail": report.detail,
            "until": report.until,
        }
    if isinstance(report, TookOver):
        return {"kind": report.kind, "run_id": report.run_id, "dead_owner": report.dead_owner}
    request = report.reminder.request
    return {
        "kind": report.kind,
        "timer": report.reminder.kind,
        "request_id": request.request_id,
        "run_id": request.run_id,
    }


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            # Cancelling would end the run in progress as `cancelled` for good; exiting leaves
            # it paused-in-flight, and its lease lets another worker take it over.
            print("afk worker: aborted", file=sys.stderr, flush=True)
            os._exit(_EXIT_ABORTED)
        print(
            "afk worker: stopping: no new runs; waiting for the runs in progress to pause or "
            "end (signal again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
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
    state: str = result.state
    if result.expired_calls:  # never a plain "completed" for a call nobody approved in time
        state = f"{state}, {len(result.expired_calls)} expired"
        gone = ", ".join(
            f"{t.tool_name} {'denied' if t.denied else 'allowed'} by fallback"
            for t in result.expired_calls
        )
        detail = f"request expired undecided: {gone}; {detail}"
    esc = Escaper()
    line = f"{esc.text(result.run_id)}  {state:<9}  {shorten(detail, 100, esc)}"
    return f"{line}  {HIDDEN_MARKER}" if esc.escaped else line


def _result_json(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "state": result.state,
        "final_text": result.final_text,
        "error": result.error,
        "pending_requests": [r.request_id for r in result.pending_requests],
        "expired_calls": [
            {"tool_name": t.tool_name, "tool_call_id": t.tool_call_id, "denied": t.denied}
            for t in result.expired_calls
        ],
    }


__all__ = [
    "APP_HELP",
    "App",
    "load_app",
    "register",
    "resume_command",
    "worker_command",
]
