"""A refund agent under a YAML policy; a scripted "finance desk" answers its approvals.

Run it from a checkout (YAML policies need the yaml extra):

    pip install -e ".[yaml]"
    python examples/refund_agent.py

A scripted model asks for three refunds at once. The policy in refund_policy.yaml lets the
small one through, sends the big one to a finance approver, and denies the huge one. This
script plays the approvers: erin, who asked for the run, tries to approve it and is refused
(no self-approval, though she is in finance); then alice approves. Nothing waits: the run
finishes on its own.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from afk.agents import Agent, PolicyEngine
from afk.approvals import ApprovalDecision, InMemoryInteractiveProvider, Principal
from afk.core import ApprovalRequested, Runner, RunnerConfig, RunResult
from afk.errors import ConfigurationError, InteractionError
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

POLICY = Path(__file__).with_name("refund_policy.yaml")
paid: list[tuple[str, int]] = []  # stands in for the payment system


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund an order.

    Args:
        order_id: The order to refund.
        amount: How much to refund, in dollars.
    """
    paid.append((order_id, amount))
    return f"refunded {amount} on {order_id}"


# A scripted stand-in for a model: three refunds in one turn, then a summary.
model = ScriptedModel(
    [
        [
            ToolCall("refund", {"order_id": "A-1001", "amount": 40}),
            ToolCall("refund", {"order_id": "A-1002", "amount": 250}),
            ToolCall("refund", {"order_id": "A-1003", "amount": 5000}),
        ],
        "I refunded what policy and finance allowed.",
    ]
)
agent = Agent(name="billing", model=model, instructions="You refund orders.", tools=[refund])


def answer(provider: InMemoryInteractiveProvider, event: ApprovalRequested) -> None:
    """The finance desk: how your web UI or chat bot would answer, with logged-in people."""
    request = event.request
    print(f"approval needed: {request.tool_name} {request.tool_args} ({request.reason})")
    erin = Principal(id="erin", authenticated_by="example")
    try:
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow"), principal=erin
        )
    except InteractionError as exc:  # the requester may not approve her own run
        print(f"  erin refused: {exc}")
    alice = Principal(id="alice", authenticated_by="example")
    decision = ApprovalDecision(kind="allow", reason="matches the returned goods")
    provider.resolve_approval(request.request_id, decision, principal=alice)
    print("  alice approved")


async def main() -> RunResult:
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        PolicyEngine.from_file(POLICY),
        provider,
        RunnerConfig(interaction_mode="interactive", approval_timeout_s=60.0),
    )
    handle = runner.run_stream(
        agent, user_message="Refund A-1001, A-1002, A-1003", requested_by="erin"
    )
    async for event in handle:
        if isinstance(event, ApprovalRequested):
            answer(provider, event)
    return await handle.result()


if __name__ == "__main__":
    try:
        result = asyncio.run(main())
    except ConfigurationError as exc:  # e.g. PyYAML missing: the message names the extra
        sys.exit(f"refund_agent.py: {exc}")
    for call in result.tool_executions:
        outcome = call.output if call.executed else f"not run: {call.error}"
        print(f"{call.args['order_id']}  {call.args['amount']:>5}  {outcome}")
    print(f"state: {result.state}; paid: {paid}")
    print(f"model: {result.final_text}")
