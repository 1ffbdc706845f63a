"""Library logging: a run's lifecycle as log records, with its ids as ``extra``.

Loggers: ``afk.run`` (started, paused, resumed, completed / stopped / cancelled at INFO,
failed and warnings at WARNING) and ``afk.approvals`` (requests opened at DEBUG, decided or
expired at INFO, refused answers at WARNING). Every record carries ``run_id`` and, for a
request, ``request_id`` (``request_ids`` for a pause) as attributes, so a formatter can
print ``%(run_id)s``. afk installs no handler but a NullHandler on ``afk``: nothing is
printed unless the application configures logging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from afk.core._setup import RunSetup
    from afk.core.events import Event

logging.getLogger("afk").addHandler(logging.NullHandler())

run_log = logging.getLogger("afk.run")
approvals_log = logging.getLogger("afk.approvals")


_Line = tuple[str, tuple[Any, ...], dict[str, Any]]  # message, its arguments, extra


class LogObserver:
    """Logs the lifecycle events of one run."""

    __slots__ = ("_agent", "_run_id")

    def __init__(self, setup: RunSetup) -> None:
        self._run_id = setup.run_id
        self._agent = setup.agent.name
        if setup.snapshot is not None and run_log.isEnabledFor(logging.DEBUG):
            run_log.debug(
                "run %s loaded from its checkpoint (step %d)",
                self._run_id,
                setup.snapshot.step,
                extra={"run_id": self._run_id, "agent_name": self._agent},
            )

    def on_event(self, event: Event) -> None:
        found = _LINES.get(event.type)
        if found is None:
            return
        logger, level, line = found
        if logger.isEnabledFor(level):  # before building anything: most runs log nothing
            message, args, extra = line(self, event)
            logger.log(level, message, *args, extra={"run_id": self._run_id, **extra})

    def close(self) -> None:
        return None

    def trace_context(self) -> dict[str, str]:
        return {}

    # -- the run ---------------------------------------------------------------------------
    def _started(self, e: Any) -> _Line:
        args = (self._run_id, e.agent_name, e.model)
        return "run %s started: agent %s, model %s", args, {"agent_name": e.agent_name}

    def _paused(self, e: Any) -> _Line:
        ids = tuple(e.request_ids)
        return "run %s paused: waiting for %s", (self._run_id, ", ".join(ids)), {"request_ids": ids}

    def _resumed(self, e: Any) -> _Line:
        ids = tuple(e.request_ids)
        return "run %s resumed: %s decided", (self._run_id, ", ".join(ids)), {"request_ids": ids}

    def _completed(self, e: Any) -> _Line:
        return "run %s %s", (self._run_id, e.state), {"state": e.state}

    def _failed(self, e: Any) -> _Line:
        args = (self._run_id, e.error_type, e.error)
        return "run %s failed: %s: %s", args, {"state": "failed", "error_type": e.error_type}

    def _cancelled(self, e: Any) -> _Line:
        return "run %s cancelled", (self._run_id,), {"state": "cancelled"}

    def _warning(self, e: Any) -> _Line:
        return "run %s: %s", (self._run_id, e.message), {}

    # -- its requests ----------------------------------------------------------------------
    def _opened(self, e: Any) -> _Line:
        r = e.request
        args = (r.request_id, self._run_id, r.kind, r.tool_name or "the model call", r.rule_id)
        return (
            "request %s of run %s opened: %s for %s (rule %s)",
            args,
            {"request_id": r.request_id},
        )

    def _decided(self, e: Any) -> _Line:
        extra = {"request_id": e.request_id, "decided_by": e.decided_by, "approver": e.approver}
        kind = e.decision.kind
        if e.decided_by == "timeout":
            args: tuple[Any, ...] = (e.request_id, self._run_id, kind)
            return "request %s of run %s expired: %s by its fallback", args, extra
        who = f" by {e.approver}" if e.approver else ""
        args = (e.request_id, self._run_id, kind, who, e.decided_by)
        return "request %s of run %s decided: %s%s (%s)", args, extra

    def _refused(self, e: Any) -> _Line:
        args = (e.request_id, self._run_id, e.approver or "an anonymous approver", e.why)
        extra = {"request_id": e.request_id, "approver": e.approver}
        return "request %s of run %s: an answer by %s was refused: %s", args, extra

    def _reminder(self, e: Any) -> _Line:
        due = "escalation" if e.kind == "escalate" else "reminder"
        args = (e.request_id, self._run_id, due)
        return "request %s of run %s is still pending: %s due", args, {"request_id": e.request_id}


_INFO, _DEBUG, _WARNING = logging.INFO, logging.DEBUG, logging.WARNING
# Event type -> the logger and level of its line, and how to write it.
_LINES: dict[str, tuple[logging.Logger, int, Callable[[LogObserver, Any], _Line]]] = {
    "run_started": (run_log, _INFO, LogObserver._started),
    "run_paused": (run_log, _INFO, LogObserver._paused),
    "run_resumed": (run_log, _INFO, LogObserver._resumed),
    "run_completed": (run_log, _INFO, LogObserver._completed),
    "run_failed": (run_log, _WARNING, LogObserver._failed),
    "run_cancelled": (run_log, _INFO, LogObserver._cancelled),
    "warning": (run_log, _WARNING, LogObserver._warning),
    "approval_requested": (approvals_log, _DEBUG, LogObserver._opened),
    "user_input_requested": (approvals_log, _DEBUG, LogObserver._opened),
    "approval_resolved": (approvals_log, _INFO, LogObserver._decided),
    "user_input_resolved": (approvals_log, _INFO, LogObserver._decided),
    "vote_refused": (approvals_log, _WARNING, LogObserver._refused),
    "approval_reminder": (approvals_log, _INFO, LogObserver._reminder),
}
