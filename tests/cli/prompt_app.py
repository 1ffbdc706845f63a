"""The terminal approval prompt on its own, for tests/cli/test_prompt_pty.py to run on a pty.

``python prompt_app.py SCENARIO``:

* ``answer``: one approval; prints the decision.
* ``timeout``: an approval the caller stops waiting for after 0.5 s, then a second one.
* ``log``: one approval, while a logging handler made before the prompt (it holds the real
  stderr) and a plain print write lines.
* ``interrupt``: one approval whose ``on_interrupt`` writes the file named by $MARK.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from afk.approvals.requests import ApprovalRequest
from afk.cli.console_provider import ConsoleInteractionProvider


def request(name: str, expires_in: float = 60.0) -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        request_id=f"req_{name}",
        run_id="run_prompt",
        step=1,
        agent_name="billing",
        tool_name="refund",
        tool_args={"amount": 250},
        tool_call_id=f"call_{name}",
        rule_id="big-refunds",
        reason="Refunds over 100 need finance sign-off.",
        created_at=now,
        expires_at=now + expires_in,
    )


async def answer(console: ConsoleInteractionProvider) -> None:
    decision = await console.request_approval(request("a"))
    print(f"decision: {decision.kind} ({decision.reason})", flush=True)


async def timeout(console: ConsoleInteractionProvider) -> None:
    try:
        await asyncio.wait_for(console.request_approval(request("a", expires_in=0.5)), 0.5)
    except TimeoutError:
        print("first: no answer", flush=True)
    decision = await console.request_approval(request("b"))
    print(f"second: {decision.kind}", flush=True)


async def log(console: ConsoleInteractionProvider) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="LOG %(message)s")

    async def chatter() -> None:
        await asyncio.sleep(0.5)
        logging.getLogger("afk.run").info("run run_prompt still waiting")
        print("EVENT a line printed meanwhile", flush=True)
        print("READY", flush=True)

    task = asyncio.ensure_future(chatter())
    decision = await console.request_approval(request("a"))
    await task
    print(f"decision: {decision.kind}", flush=True)


async def interrupt(console: ConsoleInteractionProvider) -> None:
    await console.request_approval(request("a"))
    print("not reached", flush=True)


async def main(scenario: str) -> None:
    async def mark(req: ApprovalRequest) -> None:
        Path(os.environ["MARK"]).write_text(req.request_id)

    console = ConsoleInteractionProvider(on_interrupt=mark if "MARK" in os.environ else None)
    await {"answer": answer, "timeout": timeout, "log": log, "interrupt": interrupt}[scenario](
        console
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
