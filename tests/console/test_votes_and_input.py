"""A quorum counted vote by vote over HTTP, and a user-input request answered over HTTP."""

from __future__ import annotations

from console_support import agent, bearer, client, executed, mint, paused, runner
from reporter_support import input_runner, received, reporter

from afk.agents import PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.store import RunStore


async def test_a_quorum_of_two_tokens(store_url: str, store: RunStore) -> None:
    async with runner(store_url, approvers=["alice", "bob"], quorum=2) as run:
        request_id = await paused(run)
        alice, _ = await mint(store, "alice")
        bob, _ = await mint(store, "bob")
        url = f"/api/v1/requests/{request_id}/decision"
        async with client(store) as http:
            one = await http.post(url, json={"kind": "allow"}, headers=bearer(alice))
            twice = await http.post(url, json={"kind": "allow"}, headers=bearer(alice))
            shown = (await http.get(f"/api/v1/requests/{request_id}", headers=bearer(bob))).json()
            two = await http.post(url, json={"kind": "allow"}, headers=bearer(bob))
        assert one.status_code == 200 and one.json()["status"] == "pending"
        assert twice.status_code == 409 and twice.json()["error"]["type"] == "DuplicateVoteError"
        assert [v["approver"] for v in shown["votes"]] == ["alice"] and shown["quorum"] == 2
        assert two.status_code == 200 and two.json()["status"] == "decided"
        [done] = await run.resume_ready([agent()])
        assert done.state == "completed" and executed == ["old_logs"]


async def test_a_user_input_request_takes_a_value(store_url: str, store: RunStore) -> None:
    policy = PolicyEngine(
        [
            PolicyRule(
                "ask-why",
                tool="drop_*",
                action="request_user_input",
                reason="Why drop it?",
            )
        ]
    )
    config = RunnerConfig(interaction_mode="external")
    async with Runner(policy, config=config, store=store_url) as run:
        request_id = await paused(run)
        secret, _ = await mint(store, "alice")
        url = f"/api/v1/requests/{request_id}/decision"
        async with client(store) as http:
            wrong = await http.post(
                url, json={"kind": "allow", "updated_tool_args": {}}, headers=bearer(secret)
            )
            answer = await http.post(
                url, json={"kind": "allow", "value": "it is empty"}, headers=bearer(secret)
            )
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "updated_tool_args"
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"]["value"] == "it is empty"
        assert answer.json()["approver"] == "alice"


async def test_an_answer_off_its_schema_names_the_value_field(
    store_url: str, store: RunStore
) -> None:
    async with input_runner(store_url) as run:
        paused_run = await run.run(reporter(), user_message="Q3")
        request_id = paused_run.pending_requests[0].request_id
        secret, _ = await mint(store, "alice")
        url = f"/api/v1/requests/{request_id}/decision"
        async with client(store) as http:
            answers = [
                await http.post(url, json={"kind": "allow", "value": v}, headers=bearer(secret))
                for v in ("not json", '{"to": "ops", "to": "qa"}', '{"copies": 2}')
            ]
            fitting = await http.post(
                url, json={"kind": "allow", "value": '{"to": "ops"}'}, headers=bearer(secret)
            )
        for refused in answers:
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["field"] == "value"
        assert fitting.status_code == 200, fitting.text
        received.clear()
        [done] = await run.resume_ready([reporter()])
        assert done.state == "completed" and received == [{"to": "ops"}]
