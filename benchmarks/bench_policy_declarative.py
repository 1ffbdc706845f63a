"""How evaluating one tool call scales with the number of rules.

Each engine holds N rules over N distinct tools and one call to one of them is evaluated.
Declarative rules are indexed by tool name, so their cost should stay flat; callable rules
have to be asked one by one, so theirs grows with N (shown for reference).

    python benchmarks/bench_policy_declarative.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from afk.agents.policy import PolicyEngine, PolicyEvent, PolicyRule

SIZES = (10, 100, 1000)
BUDGET_S = 0.25  # per measurement; the whole table takes a few seconds


def exact_rules(n: int) -> list[PolicyRule]:
    return [
        PolicyRule(f"r{i}", tool=f"tool_{i}", when={"amount": {"gt": 100}}, action="deny")
        for i in range(n)
    ]


def glob_rules(n: int) -> list[PolicyRule]:
    return [
        PolicyRule(f"g{i}", tool=f"svc{i}_*", when={"amount": {"gt": 100}}, action="deny")
        for i in range(n)
    ]


def callable_rules(n: int) -> list[PolicyRule]:
    def condition(name: str) -> Callable[[PolicyEvent], bool]:
        return lambda e: e.tool_name == name and e.tool_args.get("amount", 0) > 100

    return [PolicyRule(f"c{i}", condition=condition(f"tool_{i}"), action="deny") for i in range(n)]


def per_call_us(engine: PolicyEngine, event: PolicyEvent) -> float:
    """Best of several timed batches, in microseconds per evaluate()."""
    evaluate = engine.evaluate
    batch = 200
    best = float("inf")
    deadline = time.perf_counter() + BUDGET_S
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            evaluate(event)
        best = min(best, (time.perf_counter() - start) / batch)
    return best * 1e6


def main() -> None:
    print(f"{'rules':>6}  {'declarative exact':>18}  {'declarative glob':>17}  {'callable':>9}")
    for n in SIZES:
        target = n // 2
        exact = PolicyEngine(exact_rules(n))
        globbed = PolicyEngine(glob_rules(n))
        called = PolicyEngine(callable_rules(n))
        hit = PolicyEvent(tool_name=f"tool_{target}", tool_args={"amount": 150})
        glob_hit = PolicyEvent(tool_name=f"svc{target}_refund", tool_args={"amount": 150})
        assert exact.evaluate(hit).rule_id == f"r{target}"
        assert globbed.evaluate(glob_hit).rule_id == f"g{target}"
        assert called.evaluate(hit).rule_id == f"c{target}"
        row = (per_call_us(exact, hit), per_call_us(globbed, glob_hit), per_call_us(called, hit))
        print(f"{n:>6}  {row[0]:>15.2f} us  {row[1]:>14.2f} us  {row[2]:>6.1f} us")


if __name__ == "__main__":
    main()
