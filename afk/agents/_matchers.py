"""Declarative matchers for policy rules: name globs and predicates over argument mappings.

Everything is compiled once, when a rule is built, so matching an event parses nothing.
Matching never raises: a value of the wrong type, or a missing key, simply does not match.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from afk.agents.policy import PolicyEvent

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "regex", "prefix", "exists",
)  # fmt: skip
_ORDER_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_GLOB_MAGIC = re.compile(r"[*?\[]")
_MISSING: Any = object()


class SpecError(ValueError):
    """A declarative field is malformed; the rule adds its id (and the field, if not set)."""

    def __init__(self, detail: str, fld: str | None = None) -> None:
        super().__init__(detail)
        self.field = fld


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- globs ---------------------------------------------------------------------------------
def parse_globs(value: object, fld: str) -> tuple[str, ...]:
    """Normalise a glob or list of globs; raises SpecError describing what is accepted."""
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        expected = "a glob string or a non-empty list of glob strings"
        raise SpecError(f"must be {expected}, got {value!r}", fld)
    for item in items:
        if not isinstance(item, str) or not item:
            raise SpecError(f"every glob must be a non-empty string, got {item!r}", fld)
    return tuple(items)


def literal_prefix(glob: str) -> str:
    found = _GLOB_MAGIC.search(glob)
    return glob if found is None else glob[: found.start()]


class Globs:
    """Case-sensitive fnmatch globs: exact names in a set, the rest as one compiled regex."""

    __slots__ = ("_exact", "_regex", "patterns")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._exact = frozenset(p for p in patterns if literal_prefix(p) == p)
        wild = [fnmatch.translate(p) for p in patterns if literal_prefix(p) != p]
        self._regex = re.compile("|".join(wild)).match if wild else None

    def matches(self, name: str) -> bool:
        if name in self._exact:
            return True
        return self._regex is not None and self._regex(name) is not None

    def why_not(self, what: str, name: str | None) -> str | None:
        if name is None:
            return f"{what}: the event has no {what} name"
        if self.matches(name):
            return None
        shown = ", ".join(repr(p) for p in self.patterns)
        return f"{what} {name!r} does not match {shown}"


# -- predicates ----------------------------------------------------------------------------
def _tag(value: object) -> tuple[str, object] | None:
    """Equality key keeping bools apart from numbers (True must not equal 1 in a policy)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return None


def _same(a: object, b: object) -> bool:
    ta, tb = _tag(a), _tag(b)
    if ta is not None or tb is not None:
        return ta == tb
    try:
        return bool(a == b)
    except Exception:  # exotic argument types must not break evaluation
        return False


def _ordered(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return isinstance(a, str) and isinstance(b, str)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: bool(a > b),
    "gte": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "lte": lambda a, b: bool(a <= b),
}


class Predicate:
    """One operator applied to the value at ``key`` (dots reach into nested mappings)."""

    __slots__ = ("_test", "key", "op", "operand", "path")

    def __init__(self, key: str, op: str, operand: Any) -> None:
        self.key, self.op = key, op
        self.path = tuple(key.split("."))
        self.operand = operand
        self._test = _build_test(op, operand)

    def lookup(self, mapping: Mapping[str, Any]) -> Any:
        value = mapping.get(self.key, _MISSING)
        if value is not _MISSING or len(self.path) == 1:
            return value
        current: Any = mapping
        for part in self.path:
            if isinstance(current, Mapping):
                current = current.get(part, _MISSING)
            elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return _MISSING
            if current is _MISSING:
                return _MISSING
        return current

    def test(self, mapping: Mapping[str, Any]) -> bool:
        value = self.lookup(mapping)
        if value is _MISSING:
            return self.op == "exists" and not self.operand
        return self._test(value)

    def why_not(self, mapping: Mapping[str, Any]) -> str | None:
        if self.test(mapping):
            return None
        value, op, operand = self.lookup(mapping), self.op, self.operand
        if value is _MISSING:
            return f"{self.key}: missing"
        shown = f"{self.key}: {_short(value)}"
        if op == "exists":
            return f"{shown} is present but exists is false"
        if op in _ORDER_SYMBOLS:
            if not _ordered(value, operand):
                return f"{shown} cannot be compared with {_short(operand)}"
            return f"{shown} is not {_ORDER_SYMBOLS[op]} {_short(operand)}"
        if op in ("regex", "prefix") and not isinstance(value, str):
            return f"{shown} is not a string"
        # Only the operator's own text is built: the others could not take its operand
        # (a number is no list).
        if op == "eq":
            text = f"is not {_short(operand)}"
        elif op == "ne":
            text = f"equals {_short(operand)}"
        elif op in ("in", "not_in"):
            text = f"{'is not in' if op == 'in' else 'is in'} {_short(list(operand))}"
        elif op == "regex":
            text = f"does not match regex {_short(getattr(operand, 'pattern', operand))}"
        else:
            text = f"does not start with {' or '.join(repr(p) for p in operand)}"
        return f"{shown} {text}"


def _build_test(op: str, operand: Any) -> Callable[[Any], bool]:
    if op == "exists":
        return lambda _value: bool(operand)
    if op == "eq":
        return lambda value: _same(value, operand)
    if op == "ne":
        return lambda value: not _same(value, operand)
    if op in _COMPARE:
        compare = _COMPARE[op]
        return lambda value: _ordered(value, operand) and compare(value, operand)
    if op in ("in", "not_in"):
        keys = frozenset(_tag(item) for item in operand)
        want = op == "in"

        def member(value: Any) -> bool:
            tag = _tag(value)
            return (tag is not None and tag in keys) == want

        return member
    if op == "regex":
        search = operand.search
        return lambda value: isinstance(value, str) and search(value) is not None
    prefixes = tuple(operand)
    return lambda value: isinstance(value, str) and value.startswith(prefixes)


def _check_operand(key: str, op: str, operand: Any) -> Any:
    """Validate an operator's operand; returns the compiled form (regex, tuple)."""
    bad = f"{key!r}: {op}: "
    if op == "exists":
        if not isinstance(operand, bool):
            raise SpecError(f"{bad}must be true or false, got {operand!r}")
    elif op in _COMPARE:
        number = isinstance(operand, int | float) and not isinstance(operand, bool)
        if not (isinstance(operand, str) or (number and not math.isnan(operand))):
            raise SpecError(f"{bad}must be a number or a string, got {operand!r}")
    elif op in ("in", "not_in"):
        if not isinstance(operand, list | tuple | set | frozenset) or any(
            _tag(item) is None for item in operand
        ):
            raise SpecError(f"{bad}must be a list of strings, numbers, booleans or null")
        return tuple(operand)
    elif op == "regex":
        if not isinstance(operand, str):
            raise SpecError(f"{bad}must be a regular expression string, got {operand!r}")
        try:
            return re.compile(operand)
        except re.error as exc:
            raise SpecError(f"{bad}invalid regular expression {operand!r}: {exc}") from None
    elif op == "prefix":
        items = (operand,) if isinstance(operand, str) else operand
        if not isinstance(items, list | tuple) or not items:
            raise SpecError(f"{bad}must be a string or a list of strings, got {operand!r}")
        if not all(isinstance(item, str) for item in items):
            raise SpecError(f"{bad}must be a string or a list of strings, got {operand!r}")
        return tuple(items)
    return operand


def compile_predicates(spec: object, fld: str) -> tuple[Predicate, ...]:
    """``{"amount": {"gt": 100}, "db": "prod"}`` → predicates that must all hold."""
    try:
        return _compile_predicates(spec)
    except SpecError as exc:
        exc.field = exc.field or fld
        raise


def _compile_predicates(spec: object) -> tuple[Predicate, ...]:
    if not isinstance(spec, Mapping):
        raise SpecError(f"must be a mapping of argument name to predicate, got {spec!r}")
    predicates: list[Predicate] = []
    for key, rhs in spec.items():
        if not isinstance(key, str) or not key or "" in key.split("."):
            raise SpecError(f"keys must be names like 'amount' or 'owner.email', got {key!r}")
        if isinstance(rhs, list | tuple):
            raise SpecError(
                f"{key!r}: a bare list is ambiguous; write {{in: [...]}} or {{eq: [...]}}"
            )
        if not isinstance(rhs, Mapping):
            predicates.append(Predicate(key, "eq", rhs))
            continue
        if not rhs:
            raise SpecError(f"{key!r}: needs at least one operator ({', '.join(OPERATORS)})")
        for op, operand in rhs.items():
            if op not in OPERATORS:
                raise SpecError(
                    f"{key!r}: unknown operator {op!r}; accepted: {', '.join(OPERATORS)}"
                    " (to compare with a mapping, write {eq: {...}})"
                )
            predicates.append(Predicate(key, op, _check_operand(key, op, operand)))
    return tuple(predicates)


# -- a rule's declarative part ---------------------------------------------------------------
class RuleMatcher:
    """All of a rule's declarative matchers; every one present must hold."""

    __slots__ = ("agent", "annotations", "context", "server", "tool", "when")

    def __init__(
        self,
        tool: Globs | None,
        agent: Globs | None,
        when: tuple[Predicate, ...],
        context: tuple[Predicate, ...],
        *,
        server: Globs | None = None,
        annotations: tuple[Predicate, ...] = (),
    ) -> None:
        self.tool, self.agent, self.when, self.context = tool, agent, when, context
        self.server, self.annotations = server, annotations

    def matches(self, event: PolicyEvent) -> bool:
        if self.tool is not None:
            name = event.tool_name
            if name is None or not self.tool.matches(name):
                return False
        if self.agent is not None and not self.agent.matches(event.agent_name):
            return False
        if self.server is not None:
            server = event.tool_server
            if server is None or not self.server.matches(server):
                return False
        for predicate in self.annotations:
            if not predicate.test(event.tool_annotations):
                return False
        for predicate in self.when:
            if not predicate.test(event.tool_args):
                return False
        return all(predicate.test(event.context) for predicate in self.context)

    def why_not(self, event: PolicyEvent) -> str | None:
        """The first reason this rule does not match, in the order ``matches`` checks."""
        if self.tool is not None and (why := self.tool.why_not("tool", event.tool_name)):
            return why
        if self.agent is not None and (why := self.agent.why_not("agent", event.agent_name)):
            return why
        if self.server is not None and (why := self.server.why_not("server", event.tool_server)):
            return why
        for label, predicates, mapping in (
            ("annotations", self.annotations, event.tool_annotations),
            ("when", self.when, event.tool_args),
            ("context", self.context, event.context),
        ):
            for predicate in predicates:
                if (why := predicate.why_not(mapping)) is not None:
                    return f"{label} {why}"
        return None


# -- indexing --------------------------------------------------------------------------------
class GlobIndex:
    """Which positions (rules in priority order) could match a tool name.

    Exact names resolve with one dict lookup, globs with a literal prefix are bucketed by that
    prefix, and rules without ``tool`` or with a leading wildcard are always candidates. The
    candidates still run their full matcher: a prefix bucket only narrows the search.
    """

    __slots__ = ("_always", "_exact", "_prefix_lengths", "_prefixed", "_untooled")

    def __init__(self, globs_by_position: Sequence[tuple[str, ...] | None]) -> None:
        always: list[int] = []
        untooled: list[int] = []
        exact: dict[str, set[int]] = {}
        prefixed: dict[str, set[int]] = {}
        for position, globs in enumerate(globs_by_position):
            if globs is None:
                always.append(position)
                untooled.append(position)
            elif any(literal_prefix(g) == "" for g in globs):
                always.append(position)
            else:
                for glob in globs:
                    prefix = literal_prefix(glob)
                    bucket = exact if prefix == glob else prefixed
                    bucket.setdefault(prefix, set()).add(position)
        self._always = tuple(always)
        self._untooled = tuple(untooled)
        # Merged with the always-list up front so an exact hit needs no merge at lookup time.
        self._exact = {name: tuple(sorted(hit.union(always))) for name, hit in exact.items()}
        self._prefixed = {prefix: tuple(hit) for prefix, hit in prefixed.items()}
        self._prefix_lengths = tuple(sorted({len(prefix) for prefix in prefixed}))

    def lookup(self, name: str | None) -> tuple[int, ...]:
        if name is None:
            return self._untooled
        found = self._exact.get(name, self._always)
        extra: list[tuple[int, ...]] = []
        for length in self._prefix_lengths:
            if length > len(name):
                break
            bucket = self._prefixed.get(name[:length])
            if bucket is not None:
                extra.append(bucket)
        if not extra:
            return found
        merged = set(found)
        for bucket in extra:
            merged.update(bucket)
        return tuple(sorted(merged))
