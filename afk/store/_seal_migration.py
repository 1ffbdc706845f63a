"""The store schema v3 migration, shared by both backends: seal the rows a v1/v2 store holds
and re-chain its ledger under the deployment key (the backends' ``_migrate``, which load this
module only for such a store).

Trust on first use: the rows and ledger entries found at upgrade time are taken as they are
and signed. Whatever was forged in the database before the upgrade becomes "valid"; what is
changed after it does not verify. (The one check possible is made: a v2 request's unkeyed
digest is re-keyed only when it is still the digest of the arguments it claims to cover.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from afk.audit.chain import Checkpoint
from afk.audit.keys import Keyring
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _seal as s
from afk.store._migrate import Rows


@dataclass(frozen=True, slots=True, kw_only=True)
class SealStep:
    """Read every row of one table, and the UPDATE parameters that seal them."""

    select: str
    update: str
    updates: Callable[[Keyring, Rows], list[tuple[Any, ...]]]


def _runs(keys: Keyring, rows: Rows) -> list[tuple[Any, ...]]:
    return [(s.mac_of(keys, r), r.run_id) for r in map(c.run_from_row, rows)]


def _requests(keys: Keyring, rows: Rows) -> list[tuple[Any, ...]]:
    found = [s.rekeyed_request(keys, c.request_from_row(row)) for row in rows]
    return [(r.args_digest, r.bound_digest, s.mac_of(keys, r), r.request_id) for r in found]


def _executions(keys: Keyring, rows: Rows) -> list[tuple[Any, ...]]:
    # Their unkeyed args_digest stays: it is covered by the MAC but compared with nothing.
    return [(s.mac_of(keys, e), e.key) for e in map(c.execution_from_row, rows)]


def _votes(keys: Keyring, rows: Rows) -> list[tuple[Any, ...]]:
    return [(s.mac_of(keys, v), v.request_id, v.approver) for v in map(a.vote_from_row, rows)]


def _grants(keys: Keyring, rows: Rows) -> list[tuple[Any, ...]]:
    return [(s.mac_of(keys, g), g.grant_id) for g in map(a.grant_from_row, rows)]


def _select(table: str, cols: Sequence[str]) -> str:
    return f"SELECT {', '.join(cols)} FROM {{t}}{table}"


STEPS = (
    SealStep(
        select=_select("runs", c.RUN_COLS),
        update="UPDATE {t}runs SET mac = ? WHERE run_id = ?",
        updates=_runs,
    ),
    SealStep(
        select=f"SELECT {c.REQUEST_READ} FROM {{t}}requests",
        update=(
            "UPDATE {t}requests SET args_digest = ?, bound_digest = ?, mac = ? WHERE request_id = ?"
        ),
        updates=_requests,
    ),
    SealStep(
        select=_select("executions", c.EXECUTION_COLS),
        update="UPDATE {t}executions SET mac = ? WHERE key = ?",
        updates=_executions,
    ),
    SealStep(
        select=_select("votes", a.VOTE_COLS),
        update="UPDATE {t}votes SET mac = ? WHERE request_id = ? AND approver = ?",
        updates=_votes,
    ),
    SealStep(
        select=_select("grants", a.GRANT_COLS),
        update="UPDATE {t}grants SET mac = ? WHERE grant_id = ?",
        updates=_grants,
    ),
)


def fresh_checkpoint(keys: Keyring, head: tuple[int, str], entries: int) -> tuple[Any, ...]:
    """INSERT_CHECKPOINT parameters vouching for the re-chained head. Written only when the
    store kept checkpoints: the old ones signed unkeyed hashes that no longer exist (they
    stay, as history; verification reads the latest)."""
    signed = Checkpoint(head_id=head[0], head_hash=head[1], entries=entries, at=time.time())
    return c.params(signed.signed(keys), c.CHECKPOINT_COLS[1:])
