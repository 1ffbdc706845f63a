"""What the MCP tests share besides fixtures: the shop server script and its ledger."""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).with_name("shop_server.py")


def ran(ledger: Path) -> list[str]:
    """The ledger's lines: what the shop server really ran."""
    return ledger.read_text(encoding="utf-8").splitlines() if ledger.exists() else []
