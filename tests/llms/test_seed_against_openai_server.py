"""The seed's headless example, unchanged, against a local OpenAI-protocol server.

Only OPENAI_BASE_URL and OPENAI_API_KEY are set: `model="gpt-5.2-mini"` resolves to the
OpenAI adapter by name, exactly as it would against the real API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakeserver import FakeServer, openai_sse_reply

sys.path.insert(0, str(Path(__file__).parents[1] / "seed"))
from seed_examples import HEADLESS

AUDIT = """
assert [e.action for e in result.events if e.type == "policy_decision"] == ["request_approval"]
assert not any(e.type == "tool_started" for e in result.events)
print("final:", result.final_text)
"""


def _chunk(delta: dict[str, object]) -> dict[str, object]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def test_seed_headless_example_runs_unchanged_against_a_compatible_server() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "drop_table", "arguments": json.dumps({"name": "old_logs"})},
    }
    with FakeServer() as server:
        server.queue(
            openai_sse_reply([_chunk({"role": "assistant", "tool_calls": [call]})]),
            openai_sse_reply([_chunk({"content": "The drop was blocked."})]),
        )
        env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-x"}
        proc = subprocess.run(
            [sys.executable, "-c", HEADLESS + AUDIT],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "State: completed" in proc.stdout
    assert "final: The drop was blocked." in proc.stdout
    first, second = server.bodies
    assert first["model"] == "gpt-5.2-mini"
    assert first["messages"][0] == {
        "role": "system",
        "content": "You manage infrastructure changes. Always use available tools.",
    }
    assert server.requests[0].headers["authorization"] == "Bearer sk-x"
    assistant, tool_result = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "drop_table"
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == "call_1"
    assert tool_result["content"].startswith("Tool call denied:")
