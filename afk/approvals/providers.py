"""Interaction providers route a request to a human and bring the decision back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from afk.approvals.decide import Decided, Vote, decide
from afk.approvals.principal import Principal, asserted
from afk.approvals.requests import (
    FALLBACKS,
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    Fallback,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.errors import (
    AlreadyDecidedError,
    ConfigurationError,
    RequestExpiredError,
    UnknownRequestError,
)


@runtime_checkable
class InteractionProvider(Protocol):
    """Routes requests to a human. The runner awaits each call under its own timeout; a
    provider that raises counts as a deny. An optional ``notify(event)`` (sync or async)
    receives every run event except warnings."""

    async def request_approval(self, request: ApprovalRequest) -> ApprovalDecision:
        """Ask a human whether the call in ``request`` may run; return their decision. The runner
        bounds the wait by the request's deadline and applies the fallback when it passes."""

    async def request_user_input(self, request: UserInputRequest) -> UserInputDecision:
        """Ask a human the request's prompt; return their answer (or a deny). The runner bounds the
        wait as for :meth:`request_approval`."""


class HeadlessInteractionProvider:
    """Answers every request with the configured fallbacks; no human is involved."""

    def __init__(self, *, approval_fallback: Fallback = "deny", input_fallback: Fallback = "deny"):
        for name, value in (
            ("approval_fallback", approval_fallback),
            ("input_fallback", input_fallback),
        ):
            if value not in FALLBACKS:
                raise ConfigurationError(
                    f"HeadlessInteractionProvider.{name} must be one of {FALLBACKS}, got {value!r}"
                )
        self.approval_fallback = approval_fallback
        self.input_fallback = input_fallback

    async def request_approval(self, request: ApprovalRequest) -> ApprovalDecision:
        """The configured ``approval_fallback`` at once: there is no one to ask."""
        return ApprovalDecision(kind=self.approval_fallback, reason="headless fallback")

    async def request_user_input(self, request: UserInputRequest) -> UserInputDecision:
        # The runner never asks a headless provider: it applies RunnerConfig's fallbacks itself
        # (input "allow" there runs the tool with its original arguments). Standalone, an
        # "allow" can only answer with empty text.
        """A deny, or with ``input_fallback="allow"`` an empty answer: there is no one to ask."""
        if self.input_fallback == "allow":
            return UserInputDecision(kind="allow", value="", reason="headless fallback")
        return UserInputDecision(kind="deny", reason="headless fallback")


_State = Literal["pending", "decided", "expired"]


@dataclass(slots=True)
class _Entry:
    request: Request
    state: _State
    future: asyncio.Future[Any] | None = None
    decision: Decision | None = None
    closed_at: float = 0.0
    note: str = ""
    votes: list[Vote] | None = None


async def _answer(future: asyncio.Future[Any]) -> Any:
    return await future


def _deliver(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class InMemoryInteractiveProvider:
    """Keeps requests in memory until ``resolve_approval`` / ``resolve_input`` answers them.

    Both may be called from any thread or task and wake the waiting run at once (one future per
    request, no polling). The first decision stands: a second one, an unknown id, or a decision
    after ``expires_at`` raises a distinct error. Decided requests are remembered (the last
    ``history`` of them, and all decided in the last ``history_s`` seconds) so those errors can
    tell "already decided" and "expired" from "unknown".
    """

    def __init__(self, *, history: int = 10_000, history_s: float = 86_400.0) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, _Entry] = {}
        self._closed: OrderedDict[str, _Entry] = OrderedDict()
        self._history = history
        self._history_s = history_s

    # -- the runner's side ---------------------------------------------------------------
    # Plain functions returning a coroutine: the request is registered the moment the runner
    # asks, before it announces the request, so pending() and a notify() hook already see it.
    # The runner awaits the coroutine under its own timeout and closes the request through
    # expire() when it stops waiting.
    def request_approval(self, request: ApprovalRequest) -> Coroutine[Any, Any, ApprovalDecision]:
        """Register ``request`` (visible in :meth:`pending` at once) and return a coroutine that
        waits for :meth:`resolve_approval`."""
        return _answer(self._register(request))

    def request_user_input(
        self, request: UserInputRequest
    ) -> Coroutine[Any, Any, UserInputDecision]:
        """Register ``request`` (visible in :meth:`pending` at once) and return a coroutine that
        waits for :meth:`resolve_input`."""
        return _answer(self._register(request))

    def _register(self, request: Request) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        entry = _Entry(request=request, state="pending", future=future)
        with self._lock:
            self._open[request.request_id] = entry
        return future

    def expire(self, request_id: str, note: str = "expired") -> Decision | None:
        """Close a pending request. Returns the decision if one was accepted before."""
        with self._lock:
            entry = self._open.pop(request_id, None)
            if entry is None:
                closed = self._closed.get(request_id)
                return closed.decision if closed is not None else None
            entry.state, entry.note = "expired", note
            self._remember(entry)
            return None

    # -- the human's side ----------------------------------------------------------------
    def pending(self) -> list[Request]:
        """Open approval and input requests, oldest first."""
        with self._lock:
            return [e.request for e in self._open.values()]

    def resolve_approval(
        self, request_id: str, decision: ApprovalDecision, *, principal: Principal | None = None
    ) -> Literal["decided", "pending"]:
        """Record a decision (or, for a request needing a quorum, one vote) by ``principal``:
        the person your application authenticated. Without one, ``decision.approver`` is taken
        as the name your code vouches for (``authenticated_by="app"``). Returns "pending" while
        the quorum is not reached. Refusals raise and change nothing."""
        return self._resolve(request_id, decision, principal)

    def resolve_input(
        self, request_id: str, decision: UserInputDecision, *, principal: Principal | None = None
    ) -> Literal["decided", "pending"]:
        """Answer a user-input request (or cast one vote on it) as ``principal``, with the same
        rules and refusals as :meth:`resolve_approval`. Returns "pending" while a quorum is not
        reached."""
        return self._resolve(request_id, decision, principal)

    def _resolve(
        self, request_id: str, decision: Decision, principal: Principal | None
    ) -> Literal["decided", "pending"]:
        who = principal if principal is not None else asserted(decision.approver, "app")
        with self._lock:
            entry = self._open.get(request_id)
            if entry is None:
                self._refuse_closed(request_id)
            assert entry is not None
            now = time.time()
            if now > entry.request.expires_at:
                del self._open[request_id]
                entry.state, entry.note = "expired", "decision arrived after expires_at"
                self._remember(entry)
            # Every refusal (expired too) raises from the one decision rule.
            outcome = decide(
                entry.request,
                Vote(principal=who, decision=decision, at=now),
                votes=entry.votes or (),
                now=now,
            )
            if not isinstance(outcome, Decided):
                entry.votes = list(outcome.votes)
                return "pending"
            del self._open[request_id]
            future = entry.future
            entry.state, entry.decision = "decided", outcome.decision
            self._remember(entry)
        assert future is not None
        loop = future.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _deliver(future, outcome)
        else:
            loop.call_soon_threadsafe(_deliver, future, outcome)
        return "decided"

    def _refuse_closed(self, request_id: str) -> None:
        closed = self._closed.get(request_id)
        if closed is None:
            raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
        if closed.state == "decided":
            raise AlreadyDecidedError(
                f"request {request_id} was already decided ({closed.decision!r}); "
                "the first decision stands",
                request_id=request_id,
                first_decision=closed.decision,
            )
        raise RequestExpiredError(
            f"request {request_id} is closed: {closed.note}", request_id=request_id
        )

    def _remember(self, entry: _Entry) -> None:
        now = time.time()
        entry.closed_at = now
        entry.future = None
        self._closed[entry.request.request_id] = entry
        horizon = now - self._history_s
        while len(self._closed) > self._history:
            oldest = next(iter(self._closed.values()))
            if oldest.closed_at >= horizon:
                break
            self._closed.popitem(last=False)


__all__ = [
    "HeadlessInteractionProvider",
    "InMemoryInteractiveProvider",
    "InteractionProvider",
]
