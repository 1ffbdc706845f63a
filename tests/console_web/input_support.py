"""The inbox's input-request tests: paused runs of the reporter (tests/reporter_support.py),
resumed, and what a read must not change."""

from __future__ import annotations

from typing import Any

import dba_support
from dba_support import agent
from reporter_support import input_runner, reporter
from web_support import paused, with_store, worker_pass

from afk.agents import PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig


def ask(
    store_url: str, *titles: str, timeout_s: float | None = None, requested_by: str | None = None
) -> list[str]:
    """Paused runs (one per title), each waiting on the tool's question: the request ids."""
    return paused(
        lambda: input_runner(store_url, timeout_s=timeout_s),
        reporter,
        *titles,
        requested_by=requested_by,
    )


def resume_reports(store_url: str) -> list[Any]:
    """One worker pass over the reporter's runs: how each ready run ended."""
    return worker_pass(lambda: input_runner(store_url), reporter)


def pause_under(store_url: str, rule_id: str, *tables: str) -> list[str]:
    """Paused drops (one per table) under a rule named ``rule_id``: their request ids."""
    policy = PolicyEngine([PolicyRule(rule_id, tool="drop_*", action="request_approval")])
    config = RunnerConfig(interaction_mode="external")
    return paused(lambda: Runner(policy, config=config, store=store_url), agent, *tables)


def store_contents(store_url: str) -> Any:
    """Everything a read could change (rows, the ledger): the API tests' own measure
    (tests/dba_support.py), read through a store of its own."""
    return with_store(store_url, dba_support.store_contents)
