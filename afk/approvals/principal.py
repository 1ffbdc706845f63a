"""Who decides: a principal afk authenticated, never a name someone typed.

Ids are canonical (Unicode NFKC, case-folded, trimmed, inner white space collapsed) at every
entry point, so ``Alice``, ``alice `` and ``\\talice`` are one person; an id with control or
invisible characters, or one that canonicalizes to nothing, is refused.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

from afk.errors import InvalidPrincipalError

# Categories that never belong in a name: controls, format characters (zero width, bidi),
# private use, surrogates and unassigned code points.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def canonical_id(name: object, *, what: str = "principal id") -> str:
    """The canonical form of a person's or group's name; raises InvalidPrincipalError."""
    if not isinstance(name, str):
        raise InvalidPrincipalError(f"{what} must be a string, got {type(name).__name__}")
    if name.isascii():  # the common case, on every vote: NFKC and casefold are lower() here
        text = " ".join(name.lower().split())
        if text and text.isprintable():
            return text
    return _canonical_unicode(name, what)


@functools.lru_cache(maxsize=4096)
def _canonical_unicode(name: str, what: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    text = " ".join(text.split())
    bad = next((ch for ch in text if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise InvalidPrincipalError(
            f"{what} {name!r} contains a control or invisible character (U+{ord(bad):04X})"
        )
    if not text:
        raise InvalidPrincipalError(f"{what} {name!r} is empty once canonicalized")
    return text


def canonical_ids(names: object, *, what: str) -> tuple[str, ...]:
    """Canonical ids of a list of names, in order, without repeats."""
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise InvalidPrincipalError(f"{what} must be a list of names")
    return tuple(dict.fromkeys(canonical_id(n, what=what) for n in names))


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated approver.

    ``authenticated_by`` says how afk knows who this is (``os:uid=1000``,
    ``token:tok_...``, ``oidc:https://issuer``, ``app`` for a host application that
    authenticated the person itself). ``operator`` names the authenticated account that vouched
    for this principal when it differs (``afk approvals approve --as``); the ledger records both.
    """

    id: str
    authenticated_by: str
    display_name: str | None = None
    groups: tuple[str, ...] = ()
    operator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", canonical_id(self.id))
        if not isinstance(self.authenticated_by, str) or not self.authenticated_by.strip():
            raise InvalidPrincipalError(
                f"Principal {self.id!r} needs authenticated_by (how afk knows who it is)"
            )
        if self.groups:
            groups = canonical_ids(list(self.groups), what="Principal.groups")
            object.__setattr__(self, "groups", groups)

    @property
    def label(self) -> str:
        """How the ledger and the CLI name this principal."""
        via = f" via {self.operator}" if self.operator else ""
        return f"{self.id} ({self.authenticated_by}{via})"


def ledger_fields(principal: Principal | None) -> dict[str, str | None]:
    """How the ledger names who voted: the id, how afk knows it, and who vouched."""
    if principal is None:
        return {"principal": None, "authenticated_by": "anonymous"}
    fields: dict[str, str | None] = {
        "principal": principal.id,
        "authenticated_by": principal.authenticated_by,
    }
    if principal.operator:
        fields["operator"] = principal.operator
    return fields


def asserted(name: str | None, by: str) -> Principal | None:
    """The principal a trusted caller names (host code calling ``resolve``, a provider's
    answer): its id as given, authenticated by ``by``. None (anonymous) when no name."""
    if name is None:
        return None
    return Principal(id=name, authenticated_by=by)


__all__ = [
    "Principal",
    "asserted",
    "canonical_id",
    "canonical_ids",
    "ledger_fields",
]
