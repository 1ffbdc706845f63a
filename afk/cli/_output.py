"""Shared plumbing of the durable-run commands: the common options, opening the store, and
turning records into text, times and JSON (tables: :mod:`afk.cli._table`)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar

from afk.approvals.display import Escaper, escape, escaped_json
from afk.errors import ConfigurationError
from afk.store import Page, RunStore, SQLiteStore, open_store

T = TypeVar("T")

NO_STORE = "no run store: pass --store URL (e.g. --store sqlite:///runs.db) or set AFK_STORE"
# Payload columns hold JSON text; --json output parses them so consumers don't decode twice.
_JSON_FIELDS = ("request", "decision", "snapshot", "payload")


# -- common options ------------------------------------------------------------------------
def common_options() -> argparse.ArgumentParser:
    """A parent parser with ``--store``, ``--json``, ``--wide`` and ``--no-color``, shared by
    every durable-run command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store", metavar="URL", help="run store, e.g. sqlite:///runs.db (default: $AFK_STORE)"
    )
    parent.add_argument("--json", action="store_true", help="print one JSON document")
    parent.add_argument(
        "--wide",
        action="store_true",
        help="every value whole and ids in full (default on a terminal: fit its width; "
        "piped or redirected output is always whole)",
    )
    parent.add_argument(
        "--no-color", action="store_true", help="no colour (also: NO_COLOR set to anything)"
    )
    return parent


def positive_int(text: str) -> int:
    """Parse an argparse value that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def next_page_line(args: argparse.Namespace, command: list[str], page: Page[Any]) -> str | None:
    """``more: <the command that prints the next page>``, or None on the last page. It
    repeats ``--store`` only when that holds no password (the line may be copied or logged)."""
    if page.next_cursor is None:
        return None
    # Here, not at the top: only a listing with a next page needs them.
    import shlex
    from urllib.parse import urlsplit

    words = ["afk", *command]
    if args.store and urlsplit(args.store).password is None:
        words += ["--store", args.store]
    if args.limit != 50:
        words += ["--limit", str(args.limit)]
    words += [*(["--json"] if args.json else []), "--cursor", page.next_cursor]
    return "more: " + escape(shlex.join(words))


def store_spec(args: argparse.Namespace) -> str | None:
    spec: str | None = args.store or os.environ.get("AFK_STORE", "").strip() or None
    return spec


def open_cli_store(
    args: argparse.Namespace, *, must_exist: bool = True, inline: bool = False
) -> RunStore:
    """The store named by ``--store`` or ``AFK_STORE``. A SQLite file that does not exist is
    refused when ``must_exist``: reading commands would otherwise create an empty store and
    report "nothing here" for what is really a typo in the path. ``inline``: a SQLite store
    runs its operations in this thread (see :func:`with_store`)."""
    spec = store_spec(args)
    if spec is None:
        raise ConfigurationError(NO_STORE)
    store = open_store(spec)
    if isinstance(store, SQLiteStore):
        if must_exist and not os.path.exists(store.path):
            raise ConfigurationError(
                f"no run store at {store.path}: the SQLite file does not exist"
            )
        if inline:  # the same file (open_store read the spec), its operations in this thread
            store = SQLiteStore(store.path, inline=True)
    return store


def with_store(
    args: argparse.Namespace, work: Callable[[RunStore], Awaitable[T]], *, must_exist: bool = True
) -> T:
    """Open the store, run ``work`` on it, and always close the store. On a SQLite store
    (opened inline) ``work`` runs to its end in this thread with no event loop: a command has
    nothing else to do while it waits for its database, and asyncio would be a third of what
    it imports. On any other store, ``work`` runs on a fresh event loop."""
    store = open_cli_store(args, must_exist=must_exist, inline=True)

    async def main() -> T:
        try:
            # The store is this command's own (no runner shares it), so it is readied here
            # and not through afk.core._durable, whose import brings the run machinery.
            await store.setup()
            return await work(store)
        finally:
            await store.close()

    if isinstance(store, SQLiteStore) and store.inline:
        return run_inline(main())
    import asyncio

    return asyncio.run(main())


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end in this thread without an event loop. It must never suspend:
    everything it awaits must finish at once, as an inline store's operations do. One that
    suspends waits for a loop that is not there: it is closed (its ``finally`` blocks run)
    and RuntimeError raised, an internal error that stops the command loudly."""
    try:
        awaited = coro.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coro.close()
    raise RuntimeError(
        f"internal error: {coro!r} suspended on {awaited!r} with no event loop to resume it"
    )


# -- text ----------------------------------------------------------------------------------
# Model, tool and store text is untrusted: everything shown goes through afk.approvals.display
# so it cannot move the cursor, forge lines, reverse text or hide characters. A command passes
# one Escaper through its whole rendering and ends with ``esc.marker()``.
def clean(text: object, esc: Escaper | None = None) -> str:
    """One terminal-safe line: newlines and every hidden character are shown as escapes."""
    return esc.text(text) if esc is not None else escape(str(text))


def shorten(text: object, width: int = 80, esc: Escaper | None = None) -> str:
    """One terminal-safe line of at most ``width`` columns, cut with ``…`` when longer."""
    from afk.cli._term import cut  # here: a decision's output is never cut

    return cut(clean(text, esc), width)


def compact_json(value: Any, esc: Escaper | None = None) -> str:
    """The exact JSON of ``value`` on one line, keys sorted, hidden characters escaped."""
    return esc.json(value) if esc is not None else escaped_json(value)


def pretty_json(value: Any, indent: str = "", esc: Escaper | None = None) -> str:
    text = esc.json(value, indent=2) if esc is not None else escaped_json(value, indent=2)
    return "\n".join(indent + line for line in text.splitlines())


def fields(
    pairs: Sequence[tuple[str, object]], *, width: int | None = None, esc: Escaper | None = None
) -> str:
    """``label  value`` lines, labels padded to ``width`` (default: the longest label)."""
    width = width or max(len(label) for label, _ in pairs)
    return "\n".join(
        f"{label.ljust(width)}  {clean(value, esc)}".rstrip() for label, value in pairs
    )


# -- times ---------------------------------------------------------------------------------
def _span(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s" if s < 600 and s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def relative(ts: float | None, now: float | None = None) -> str:
    """``5s ago`` / ``in 4m 59s``; beyond a week, the ISO time reads better."""
    if ts is None:
        return "-"
    delta = ts - (time.time() if now is None else now)
    if abs(delta) < 1:
        return "just now"
    if abs(delta) >= 7 * 86400:
        return iso(ts)
    return f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago"


def when(ts: float | None, now: float | None = None) -> str:
    """The ISO time with the relative one beside it."""
    return "-" if ts is None else f"{iso(ts)} ({relative(ts, now)})"


def expires(ts: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    rel = relative(ts, now)
    return rel if ts > now else f"expired {rel}"


# -- JSON ----------------------------------------------------------------------------------
def record_json(record: Any, *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A store record as a JSON object, its JSON-text payload columns parsed."""
    data: dict[str, Any] = dataclasses.asdict(record)
    for name in drop:
        data.pop(name, None)
    for name in _JSON_FIELDS:
        text = data.get(name)
        if isinstance(text, str):
            # Unparseable text stays as it is: showing it beats failing the whole command.
            with contextlib.suppress(json.JSONDecodeError):
                data[name] = json.loads(text)
    return data


def print_json(value: Any) -> None:
    # ASCII only: JSON escapes keep the value exact, and raw bidi or C1 characters in it never
    # reach a terminal that someone reads the output on.
    print(json.dumps(value, indent=2, ensure_ascii=True, default=str))


def json_line(value: Any) -> str:
    """One line of ASCII JSON, for JSON-lines output."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=str)


def decision_text(decision_json: str | None, esc: Escaper | None = None) -> str:
    """One line for a stored decision: ``allow``, ``deny: too much``, ``allow with args {...}``,
    its parts escaped."""
    esc = esc if esc is not None else Escaper()
    if decision_json is None:
        return "-"
    try:
        data = json.loads(decision_json)
    except json.JSONDecodeError:
        return shorten(decision_json, esc=esc)
    if not isinstance(data, dict):
        return shorten(decision_json, esc=esc)
    text = esc.text(data.get("kind", "?"))
    if data.get("updated_tool_args") is not None:
        text += f" with args {esc.json(data['updated_tool_args'])}"
    if data.get("value") is not None:
        text += f" {esc.json(data['value'])}"
    if data.get("stop_run"):
        text += " (stop run)"
    if data.get("reason"):
        text += f": {esc.text(data['reason'])}"
    return text
