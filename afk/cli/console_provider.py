"""Ask for approvals and input at the terminal."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import TextIO

from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    UserInputDecision,
    UserInputRequest,
)


class ConsoleInteractionProvider:
    """Shows the tool, its exact arguments and the rule, then reads the answer from stdin.

    Reading happens in a worker thread so other runs keep going. End of input counts as
    no answer: the call raises, and the runner treats that as a deny (fail closed).
    """

    def __init__(
        self,
        *,
        approver: str = "console",
        out: TextIO | None = None,
        read_line: Callable[[], str] | None = None,
    ) -> None:
        self.approver = approver
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
        target = request.tool_name or "the next model call"
        args = json.dumps(request.tool_args, indent=2, sort_keys=True)
        self._out.write(
            f"\n  APPROVAL NEEDED  {request.request_id}\n"
            f"    tool:   {target}\n"
            f"    args:   {args.replace(chr(10), chr(10) + '            ')}\n"
            f"    rule:   {request.rule_id} - {request.reason}\n"
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
        self._out.write(f"\n  INPUT NEEDED  {request.request_id}\n    {request.prompt}\n")
        text = await self._ask("  > ")
        return UserInputDecision(kind="allow", value=text, approver=self.approver)
