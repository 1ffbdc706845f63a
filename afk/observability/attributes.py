"""Span and attribute names afk's traces use, for queries and dashboards.

``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions (agent, inference and
tool-execution spans); ``afk.*`` names are afk's own, for what those conventions do not cover
(policy evaluations, approval waits, durable runs). Importing this module imports no
OpenTelemetry package.
"""

from __future__ import annotations

# -- GenAI semantic conventions ----------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"  # invoke_agent | chat | execute_tool
PROVIDER_NAME = "gen_ai.provider.name"  # openai, anthropic, ... when the model's is known
REQUEST_MODEL = "gen_ai.request.model"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"  # the run's thread_id
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"

# -- the run ------------------------------------------------------------------------------
RUN_ID = "afk.run.id"
RUN_STATE = "afk.run.state"  # completed | stopped | failed | cancelled | paused
RUN_RESUMED = "afk.run.resumed"  # this span continues a run paused by an earlier process
STEP = "afk.step"
COST_USD = "afk.usage.cost_usd"

# -- policy evaluations --------------------------------------------------------------------
POLICY_EVENT = "afk.policy.event_type"  # tool_before_execute | llm_before_execute
POLICY_ACTION = "afk.policy.action"  # allow | deny | request_approval | request_user_input
POLICY_RULE = "afk.policy.rule_id"
POLICY_MATCHED = "afk.policy.matched_rules"
POLICY_REASON = "afk.policy.reason"

# -- approval waits ------------------------------------------------------------------------
REQUEST_ID = "afk.approval.request_id"
REQUEST_KIND = "afk.approval.kind"  # approval | user_input
REQUEST_RULE = "afk.approval.rule_id"
APPROVERS = "afk.approval.approvers"  # who may decide, as the request named them
DECISION = "afk.approval.decision"  # allow | deny (the decision's kind)
APPROVER = "afk.approval.approver"  # who decided, when a person did
DECIDED_BY = "afk.approval.decided_by"  # human | timeout | fallback | error
WAIT_SECONDS = "afk.approval.wait_seconds"  # from the request's creation to its decision
EXPIRED = "afk.approval.expired"  # decided by the fallback at the request's deadline

# -- span names ----------------------------------------------------------------------------
SPAN_RUN = "invoke_agent"  # "invoke_agent {agent}"
SPAN_CHAT = "chat"  # "chat {model}"
SPAN_TOOL = "execute_tool"  # "execute_tool {tool}"
SPAN_POLICY = "evaluate_policy"  # "evaluate_policy {tool}", or "evaluate_policy model_call"
SPAN_APPROVAL = "await_approval"  # "await_approval {tool}" (or "await_user_input {tool}")
SPAN_USER_INPUT = "await_user_input"
MODEL_CALL = "model_call"  # the target of a policy or approval span on the model call itself


__all__ = [
    "AGENT_NAME",
    "APPROVER",
    "APPROVERS",
    "CONVERSATION_ID",
    "COST_USD",
    "DECIDED_BY",
    "DECISION",
    "ERROR_TYPE",
    "EXPIRED",
    "INPUT_TOKENS",
    "MODEL_CALL",
    "OPERATION_NAME",
    "OUTPUT_TOKENS",
    "POLICY_ACTION",
    "POLICY_EVENT",
    "POLICY_MATCHED",
    "POLICY_REASON",
    "POLICY_RULE",
    "PROVIDER_NAME",
    "REQUEST_ID",
    "REQUEST_KIND",
    "REQUEST_MODEL",
    "REQUEST_RULE",
    "RUN_ID",
    "RUN_RESUMED",
    "RUN_STATE",
    "SPAN_APPROVAL",
    "SPAN_CHAT",
    "SPAN_POLICY",
    "SPAN_RUN",
    "SPAN_TOOL",
    "SPAN_USER_INPUT",
    "STEP",
    "TOOL_CALL_ID",
    "TOOL_NAME",
    "TOOL_TYPE",
    "WAIT_SECONDS",
]
