"""The approver's side as a Python API, for apps that embed afk in their own web framework:
get_request, get_run, sync twins for plain views, records that serialize to JSON in one call,
and errors that carry the HTTP status the console answers with."""

from __future__ import annotations

import json

import pytest
from billing_app import billing_agent, policy

from afk.agents import ApprovalDecision
from afk.approvals.requests import ApprovalRequest
from afk.core import Runner, RunnerConfig
from afk.errors import ConfigurationError, RunNotFoundError, UnknownRequestError

EXTERNAL = RunnerConfig(interaction_mode="external")


async def test_get_request_and_get_run(store_url: str, side_effects: object) -> None:
    async with Runner(policy, config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(billing_agent(), user_message="order-p")
        [request] = paused.pending_requests
        got = await runner.get_request(request.request_id)
        assert got == request and isinstance(got, ApprovalRequest)
        info = await runner.get_run(paused.run_id)
        assert info.state == "paused" and info.pending_requests == [request]
        assert info.agent_name == "billing"
        assert json.loads(json.dumps(info.to_dict()))["pending_requests"][0]["tool_args"] == {
            "order": "order-p",
            "amount": 250,
        }
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
        await runner.resume(paused.run_id, billing_agent())
        done = await runner.get_run(paused.run_id)
        assert done.state == "completed" and done.pending_requests == []
        with pytest.raises(UnknownRequestError) as unknown:
            await runner.get_request("req_nope")
        assert unknown.value.http_status == 404
        with pytest.raises(RunNotFoundError) as missing:
            await runner.get_run("run_nope")
        assert missing.value.http_status == 404


def test_sync_twins_serve_plain_views(store_url: str, side_effects: object) -> None:
    runner = Runner(policy, config=EXTERNAL, store=store_url)
    paused = runner.run_sync(billing_agent(), user_message="order-s")
    page = runner.pending_requests_sync()
    assert [r.request_id for r in page] == [paused.pending_requests[0].request_id]
    request = runner.get_request_sync(page[0].request_id)
    assert runner.resolve_sync(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    assert runner.resume_sync(paused.run_id, billing_agent()).state == "completed"
    assert runner.get_run_sync(paused.run_id).state == "completed"


async def test_sync_twins_refuse_a_running_loop(store_url: str) -> None:
    runner = Runner(store=store_url)
    with pytest.raises(ConfigurationError, match="running event loop"):
        runner.pending_requests_sync()
    await runner.aclose()


def test_requests_and_decisions_serialize_in_one_call() -> None:
    decision = ApprovalDecision(kind="allow", reason="ok", updated_tool_args={"amount": 5})
    assert ApprovalDecision.from_json(decision.to_json()) == decision
    assert decision.to_dict()["updated_tool_args"] == {"amount": 5}
    request = ApprovalRequest(
        request_id="req_1", run_id="run_1", step=1, agent_name="a", tool_name="t",
        tool_args={"x": 1}, tool_call_id="c", rule_id="r", reason="why", created_at=1.0,
        expires_at=2.0,
    )  # fmt: skip
    assert ApprovalRequest.from_json(json.dumps(request.to_dict())) == request
