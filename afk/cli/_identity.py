"""Who is at the command line: the operating-system account, never a name someone typed.

``afk approvals approve`` decides as the OS account that runs it. ``--as NAME`` is accepted
only where the identities file maps that account to NAME, or makes it an operator; the
ledger then records both. The file (``AFK_IDENTITIES``, default ``/etc/afk/identities.yaml``;
JSON or YAML) must be owned by root or by the account running afk and writable by nobody
else::

    accounts:
      deploy: {act_as: [alice, bob]}   # OS account deploy may decide as alice or bob
      root: {operator: true}           # may decide as anyone
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

from afk.approvals.principal import Principal, canonical_id
from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

IDENTITIES_ENV = "AFK_IDENTITIES"
DEFAULT_IDENTITIES = "/etc/afk/identities.yaml"


def os_account() -> tuple[int, str]:
    """The effective uid and its account name (``uid-N`` when the account has no name)."""
    uid = os.geteuid()
    try:
        import pwd

        return uid, pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return uid, f"uid-{uid}"


def os_principal() -> Principal:
    uid, name = os_account()
    return Principal(id=name, authenticated_by=f"os:uid={uid}")


def cli_principal(as_name: str | None) -> Principal:
    """The principal a command decides as: the OS account, or ``--as NAME`` where allowed."""
    me = os_principal()
    if as_name is None:
        return me
    wanted = canonical_id(as_name, what="--as")
    if wanted == me.id:
        return me
    path = os.environ.get(IDENTITIES_ENV, "").strip() or DEFAULT_IDENTITIES
    account = _accounts(path).get(me.id, {})
    allowed = {canonical_id(n, what=f"{path}: act_as") for n in account.get("act_as", [])}
    if account.get("operator") is not True and wanted not in allowed:
        raise ConfigurationError(
            f"--as {as_name!r}: OS account {me.id!r} may not decide as {wanted!r}; map it "
            f"under 'accounts: {{{me.id}: {{act_as: [{wanted}]}}}}' in {path} "
            f"(set {IDENTITIES_ENV} to use another file), or run afk as that account"
        )
    return Principal(id=wanted, authenticated_by=me.authenticated_by, operator=me.id)


def _accounts(path: str) -> dict[str, dict[str, Any]]:
    from pathlib import Path  # here: only --as reads the file, and every decision imports this

    file = Path(path)
    if not file.exists():
        return {}
    _check_owner(file)
    data = _parse(file, file.read_text(encoding="utf-8"))
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict) or not all(isinstance(v, dict) for v in accounts.values()):
        raise ConfigurationError(
            f"{path}: expected 'accounts:' mapping OS account names to "
            "{act_as: [names]} or {operator: true}"
        )
    return {canonical_id(k, what=f"{path}: account"): v for k, v in accounts.items()}


def _parse(file: Path, text: str) -> Any:
    if file.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{file}: not valid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"{file} is YAML: install afk-agents[yaml], or write it as .json"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{file}: not valid YAML: {exc}") from None


def _check_owner(file: Path) -> None:
    """An identities file others can write would let them pick who they are."""
    info = file.stat()
    if info.st_uid not in (0, os.geteuid()) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigurationError(
            f"{file}: refusing an identities file not owned by root or this account, or "
            "writable by group or others (chmod go-w)"
        )
