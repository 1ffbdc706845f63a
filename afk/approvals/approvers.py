"""Who may decide a request: approver directories and the expansion of ``group:NAME``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from afk.approvals.principal import canonical_id
from afk.errors import ConfigurationError, InvalidPrincipalError

GROUP_PREFIX = "group:"


class ApproverDirectory(Protocol):
    """Resolves ``group:NAME`` entries of a rule's ``approvers`` to people."""

    def members(self, group: str) -> Iterable[str]:
        """The canonical ids of the people in ``group`` (its name without ``group:``); an unknown
        group yields nobody, so a rule naming it fails closed."""


class StaticDirectory:
    """The default directory: a mapping of group name to member names, from config.
    Member names are canonical ids (see :func:`afk.approvals.principal.canonical_id`)."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.groups: dict[str, tuple[str, ...]] = {}
        for name, members in (groups or {}).items():
            if isinstance(members, str) or not all(isinstance(m, str) for m in members):
                raise ConfigurationError(
                    f"StaticDirectory group {name!r} must be a list of member names"
                )
            try:
                self.groups[name] = tuple(
                    dict.fromkeys(
                        canonical_id(m, what=f"member of group {name!r}") for m in members
                    )
                )
            except InvalidPrincipalError as exc:
                raise ConfigurationError(f"StaticDirectory: {exc}") from None

    def members(self, group: str) -> Iterable[str]:
        """The configured members of ``group``; none for a group this directory does not define."""
        return self.groups.get(group, ())


def expand_approvers(
    approvers: Sequence[str], directory: ApproverDirectory | None
) -> tuple[str, ...]:
    """Canonical ids of the people named: names stay, ``group:NAME`` becomes its members.
    Unknown groups and names that are not valid ids add nobody (fail closed)."""
    if not approvers:
        return ()
    people: list[str] = []
    for entry in approvers:
        if entry.startswith(GROUP_PREFIX):
            if directory is not None:
                people.extend(directory.members(entry[len(GROUP_PREFIX) :]))
        else:
            people.append(entry)
    ids = []
    for person in people:
        try:
            ids.append(canonical_id(person))
        except InvalidPrincipalError:
            continue
    return tuple(dict.fromkeys(ids))


__all__ = [
    "GROUP_PREFIX",
    "ApproverDirectory",
    "StaticDirectory",
    "expand_approvers",
]
