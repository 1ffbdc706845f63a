"""Ask for approvals and input at the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TextIO

from afk.approvals.display import Escaper, escape
from afk.approvals.principal import Principal
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.cli._identity import os_principal
from afk.cli._prompt import PromptInterrupted, can_prompt, read_line
from afk.cli._term import Palette, use_color

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell expects of a program ended by Ctrl-C
_HOOK_TIMEOUT_S = 5.0


def resume_hint(request: Request, *, store: str = "", app: str = "MODULE:ATTR") -> str:
    """What to do after Ctrl-C at the prompt: decide the request from any shell, then let a
    worker resume the run. ``store``: the ``--store URL`` words of the run's store, when the
    caller knows it has one."""
    rid, run = escape(request.request_id), escape(request.run_id)
    where = f" {store}" if store else ""
    saved = "is saved, paused" if store else "stays paused (when the runner has a store)"
    if isinstance(request, ApprovalRequest):
        decide = f"afk approvals approve {rid}{where}   (or: afk approvals deny {rid})"
    else:
        decide = f"afk input {rid} TEXT{where}   (or: afk input {rid} --deny)"
    return (
        f"  interrupted: request {rid} is still pending; run {run} {saved}\n"
        f"  decide it:    {decide}\n"
        f"  then resume:  afk worker --app {app}{where}"
    )


class ConsoleInteractionProvider:
    """Shows the tool, its exact arguments and the rule, then reads the answer at the terminal.

    The answer is read on the event loop (see :mod:`afk.cli._prompt`), so other runs keep
    going and the prompt ends the moment the runner stops waiting (its deadline, a decision
    made elsewhere) without leaving a reader behind for the next line. End of input counts as
    no answer: the call raises, and the runner treats that as a deny (fail closed).

    Ctrl-C at the prompt awaits ``on_interrupt`` (for instance to release the run's lease),
    prints ``hint`` (default: :func:`resume_hint`) and exits the process with status 130.
    Exiting is the one way out that decides nothing: cancelling the run would end it as
    cancelled, and raising counts as a deny. With a store, the run stays paused and its
    request pending, for ``afk approvals`` and ``afk worker``.
    """

    def __init__(
        self,
        *,
        principal: Principal | None = None,
        out: TextIO | None = None,
        read_line: Callable[[], str] | None = None,
        hint: Callable[[Request], str] | None = None,
        on_interrupt: Callable[[Request], Awaitable[object]] | None = None,
        color: bool | None = None,
    ) -> None:
        # Whoever sits at this terminal is the OS account running it: that is who decides
        # (the runner counts each answer as this principal's vote).
        self.principal = principal if principal is not None else os_principal()
        self.approver = self.principal.id
        self._out = out or sys.stdout
        self._read = read_line
        self._fd = None if read_line is not None else _stdin_fd()
        self._hint = hint or resume_hint
        self._on_interrupt = on_interrupt
        self._palette = Palette(enabled=use_color(self._out) if color is None else color)
        self._one_at_a_time: asyncio.Lock | None = None

    async def _ask(self, prompt: str, request: Request) -> str:
        if self._fd is None or not can_prompt(self._fd):
            return await self._ask_in_thread(prompt)
        try:
            line = await read_line(prompt, out=self._out, fd=self._fd)
        except PromptInterrupted:
            await self._interrupted(request)
        except asyncio.CancelledError:
            self._out.write(self._withdrawn(request) + "\n")
            self._out.flush()
            raise
        return line.strip()

    async def _ask_in_thread(self, prompt: str) -> str:
        # An injected reader, or a stdin without a file descriptor: a thread it is.
        self._out.write(prompt)
        self._out.flush()
        line: str = await asyncio.to_thread(self._read or sys.stdin.readline)
        if not line:
            raise EOFError("no answer: standard input is closed")
        return line.strip()

    def _withdrawn(self, request: Request) -> str:
        rid = escape(request.request_id)
        if time.time() >= request.expires_at:
            return f"  no answer by the deadline: request {rid} expired; the run goes on"
        return f"  request {rid} no longer waits for an answer here (decided elsewhere?)"

    async def _interrupted(self, request: Request) -> NoReturn:
        if self._on_interrupt is not None:
            # Other tasks run while it is awaited (their output goes first); keep it short.
            try:
                await asyncio.wait_for(self._on_interrupt(request), _HOOK_TIMEOUT_S)
            except Exception as exc:  # the exit must happen all the same
                self._out.write(f"  (on_interrupt failed: {escape(str(exc))})\n")
        self._out.write(self._hint(request) + "\n")
        logging.shutdown()
        for stream in (self._out, sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)

    async def request_approval(self, request: ApprovalRequest) -> ApprovalDecision:
        # Parallel gated calls would otherwise print their prompts on top of each other.
        """Prompt at the terminal for an allow or deny, one prompt at a time (parallel calls
        wait their turn). The prompt ends when the runner stops waiting (the deadline: the
        fallback decides); Ctrl-C exits the process as the class docstring says."""
        if self._one_at_a_time is None:
            self._one_at_a_time = asyncio.Lock()
        async with self._one_at_a_time:
            return await self._approval(request)

    async def _approval(self, request: ApprovalRequest) -> ApprovalDecision:
        # Tool name, arguments, rule and reason may come from the model: escaped, so none
        # can redraw the prompt or forge a line of it. Colour goes only on our own labels.
        esc = Escaper()
        request_id = esc.text(request.request_id)
        target = esc.tool(request.tool_name, none="the next model call")
        args = esc.json(request.tool_args, indent=2).replace("\n", "\n            ")
        rule = f"{esc.text(request.rule_id)} - {esc.text(request.reason)}"
        paint = self._palette.paint
        marker = "".join(f"    {paint(line, 'yellow')}\n" for line in esc.marker())
        self._out.write(
            f"\n  {paint('APPROVAL NEEDED', 'bold')}  {request_id}\n"
            f"    tool:   {target}\n"
            f"    args:   {args}\n"
            f"    rule:   {rule}\n{marker}"
        )
        answer = (await self._ask("  approve? [y/N] ", request)).lower()
        if answer in ("y", "yes"):
            return ApprovalDecision(kind="allow", approver=self.approver)
        reason = "denied at the console" if answer in ("", "n", "no") else answer
        return ApprovalDecision(kind="deny", approver=self.approver, reason=reason)

    async def request_user_input(self, request: UserInputRequest) -> UserInputDecision:
        """Prompt at the terminal for the request's answer, one prompt at a time, ending as
        :meth:`request_approval` does."""
        if self._one_at_a_time is None:
            self._one_at_a_time = asyncio.Lock()
        async with self._one_at_a_time:
            return await self._input(request)

    async def _input(self, request: UserInputRequest) -> UserInputDecision:
        esc = Escaper()
        request_id, prompt = esc.text(request.request_id), esc.text(request.prompt)
        paint = self._palette.paint
        marker = "".join(f"    {paint(line, 'yellow')}\n" for line in esc.marker())
        self._out.write(
            f"\n  {paint('INPUT NEEDED', 'bold')}  {request_id}\n    {prompt}\n{marker}"
        )
        text = await self._ask("  > ", request)
        return UserInputDecision(kind="allow", value=text, approver=self.approver)


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # replaced or closed
        return None


__all__ = [
    "EXIT_INTERRUPTED",
    "ConsoleInteractionProvider",
    "resume_hint",
]
