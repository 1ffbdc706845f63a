"""Conversation threads, shared by both backends (store schema 7): who holds a thread, and
its turns.

A thread is the conversation of the runs started with one ``thread_id``. ``threads`` holds
one row per thread: the run holding it (None when free), when it was taken and by which
process, and how many turns it has. ``thread_turns`` holds one row per finished run on the
thread: that run's messages (after the thread's earlier ones), as JSON, sealed like every
other row (a history edited in the database would put words in the model's mouth).

Holding is a compare-and-set in one transaction. A thread held by a run that has ended (its
run row says so) is free: a run that ended without handing the thread back (its process died
between the two) does not lock the thread forever. Whether a holder without a run row is
still alive is the caller's call (``take_from``): the store cannot see processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from afk.audit.keys import Keyring
from afk.errors import ThreadBusyError
from afk.store import _seal as s
from afk.store._procs import FOR_UPDATE, Proc, Q
from afk.store.store import TERMINAL_RUN_STATES

if TYPE_CHECKING:
    from afk.store.store import ThreadHolder, ThreadTurnRecord

DDL = (
    """CREATE TABLE IF NOT EXISTS {t}threads (
        thread_id TEXT PRIMARY KEY, run_id TEXT, owner TEXT, taken_at {real},
        turns INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {t}thread_turns (
        thread_id TEXT NOT NULL, turn INTEGER NOT NULL, run_id TEXT NOT NULL,
        messages TEXT NOT NULL, at {real} NOT NULL, mac TEXT,
        PRIMARY KEY (thread_id, turn))""",
)
TURN_COLS = ("thread_id", "turn", "run_id", "messages", "at", "mac")
SELECT_THREAD = "SELECT run_id, owner, taken_at, turns FROM {t}threads WHERE thread_id = ?"
INSERT_THREAD = (
    "INSERT INTO {t}threads (thread_id, run_id, owner, taken_at, turns) VALUES (?, ?, ?, ?, 0)"
)
TAKE = "UPDATE {t}threads SET run_id = ?, owner = ?, taken_at = ? WHERE thread_id = ?"
RELEASE = "UPDATE {t}threads SET run_id = NULL, owner = NULL WHERE thread_id = ? AND run_id = ?"
ADD_TURN = (
    "UPDATE {t}threads SET run_id = NULL, owner = NULL, turns = turns + 1 WHERE thread_id = ?"
)
RUN_STATUS = "SELECT status FROM {t}runs WHERE run_id = ?"
TURN_OF_RUN = "SELECT turn FROM {t}thread_turns WHERE thread_id = ? AND run_id = ?"
INSERT_TURN = (
    f"INSERT INTO {{t}}thread_turns ({', '.join(TURN_COLS)}) "
    f"VALUES ({', '.join('?' for _ in TURN_COLS)})"
)
SELECT_TURNS = (
    f"SELECT {', '.join(TURN_COLS)} FROM {{t}}thread_turns WHERE thread_id = ? ORDER BY turn"
)


def turn_from_row(row: Sequence[Any]) -> ThreadTurnRecord:
    """A ``thread_turns`` row as its record."""
    from afk.store._other_records import ThreadTurnRecord  # built on first use: see there

    return ThreadTurnRecord(**dict(zip(TURN_COLS, row, strict=True)))


def take(
    thread_id: str, run_id: str, owner: str, now: float, take_from: str | None
) -> Proc[ThreadHolder | None]:
    """Hold ``thread_id`` for ``run_id``: None when it is now held, else who holds it. Free
    is: no row, no holder, ``run_id`` itself, ``take_from`` (a holder the caller knows is
    gone), or a holder whose run has ended."""
    row = yield Q(SELECT_THREAD, (thread_id,), fetch="one", lock=FOR_UPDATE)
    if row is None:
        yield Q(INSERT_THREAD, (thread_id, run_id, owner, now))
        return None
    holder, held_by, taken_at, _turns = row
    if holder is not None and holder not in (run_id, take_from):
        status = yield Q(RUN_STATUS, (holder,), fetch="one")
        if status is None or status[0] not in TERMINAL_RUN_STATES:
            found = None if status is None else status[0]
            from afk.store._other_records import ThreadHolder

            return ThreadHolder(
                run_id=holder, owner=held_by or "", taken_at=float(taken_at or 0), status=found
            )
    yield Q(TAKE, (run_id, owner, now, thread_id))
    return None


def add_turn(keys: Keyring, turn: ThreadTurnRecord) -> Proc[ThreadTurnRecord]:
    """Append ``turn`` (its ``turn`` number is assigned here) and free the thread. Once per
    run: a run that adds its turn again (its end recorded twice after a crash) gets the
    first one back. A run that does not hold the thread is refused."""
    row = yield Q(SELECT_THREAD, (turn.thread_id,), fetch="one", lock=FOR_UPDATE)
    done = yield Q(TURN_OF_RUN, (turn.thread_id, turn.run_id), fetch="one")
    if done is not None:
        yield Q(RELEASE, (turn.thread_id, turn.run_id))
        return dataclasses.replace(turn, turn=int(done[0]))
    if row is None or row[0] != turn.run_id:
        holder = "nobody" if row is None or row[0] is None else f"run {row[0]}"
        raise ThreadBusyError(
            f"run {turn.run_id} cannot add its turn to thread {turn.thread_id!r}: "
            f"the thread is held by {holder}",
            thread_id=turn.thread_id,
            run_id=None if row is None else row[0],
        )
    record = s.sealed(keys, dataclasses.replace(turn, turn=int(row[3]) + 1))
    yield Q(INSERT_TURN, tuple(getattr(record, name) for name in TURN_COLS))
    yield Q(ADD_TURN, (turn.thread_id,))
    return record
