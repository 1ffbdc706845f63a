"""Ask for approvals and input at the terminal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

from afk.approvals.display import Escaper
from afk.approvals.principal import Principal
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    UserInputDecision,
    UserInputRequest,
)
from afk.cli._identity import os_principal


class ConsoleInteractionProvider:
    """Shows the tool, its exact arguments and the rule, then reads the answer from stdin.

    Reading happens in a worker thread so other runs keep going. End of input counts as
    no answer: the call raises, and the runner treats that as a deny (fail closed).
    """

    def __init__(
        self,
        *,
        principal: Principal | None = None,
        out: TextIO | None = None,
        read_line: Callable[[], str] | None = None,
    ) -> None:
        # Whoever sits at this terminal is the OS account running it: that is who decides
        # (the runner counts each answer as this principal's vote).
        self.principal = principal if principal is not None else os_principal()
        self.approver = self.principal.id
        self._out = out or sys.stdout
        self._read = read_line or sys.stdin.readline
        self._one_at_a_time: asyncio.Lock | None = None

    async def _ask(self, prompt: str) -> str:
        self._out.write(prompt)
        self._out.flush()
        line: str = await asyncio.to_thread(self._read)
        if not line:
            raise EOFError("no answer: standard input is closed")
        return line.strip()

    async def request_approval(self, request: ApprovalRequest) -> ApprovalDecision:
        # Parallel gated calls would otherwise print their prompts on top of each other.
        if self._one_at_a_time is None:
            self._one_at_a_time = asyncio.Lock()
        async with self._one_at_a_time:
            return await self._approval(request)

    async def _approval(self, request: ApprovalRequest) -> ApprovalDecision:
        # Tool name, arguments, rule and reason may come from the model: escaped, so none
        # can redraw the prompt or forge a line of it.
        esc = Escaper()
        request_id = esc.text(request.request_id)
        target = esc.tool(request.tool_name, none="the next model call")
        args = esc.json(request.tool_args, indent=2).replace("\n", "\n            ")
        rule = f"{esc.text(request.rule_id)} - {esc.text(request.reason)}"
        marker = "".join(f"    {line}\n" for line in esc.marker())
        self._out.write(
            f"\n  APPROVAL NEEDED  {request_id}\n"
            f"    tool:   {target}\n"
            f"    args:   {args}\n"
            f"    rule:   {rule}\n{marker}"
        )
        answer = (await self._ask("  approve? [y/N] ")).lower()
        if answer in ("y", "yes"):
            return ApprovalDecision(kind="allow", approver=self.approver)
        reason = "denied at the console" if answer in ("", "n", "no") else answer
        return ApprovalDecision(kind="deny", approver=self.approver, reason=reason)

    async def request_user_input(self, request: UserInputRequest) -> UserInputDecision:
        if self._one_at_a_time is None:
            self._one_at_a_time = asyncio.Lock()
        async with self._one_at_a_time:
            return await self._input(request)

    async def _input(self, request: UserInputRequest) -> UserInputDecision:
        esc = Escaper()
        request_id, prompt = esc.text(request.request_id), esc.text(request.prompt)
        marker = "".join(f"    {line}\n" for line in esc.marker())
        self._out.write(f"\n  INPUT NEEDED  {request_id}\n    {prompt}\n{marker}")
        text = await self._ask("  > ")
        return UserInputDecision(kind="allow", value=text, approver=self.approver)
