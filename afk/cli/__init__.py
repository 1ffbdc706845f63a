"""The `afk` command line and the terminal approval provider."""

from __future__ import annotations

# Not `from typing import ...`: typing would be most of what `afk --version` imports; mypy
# reads any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from afk.cli.console_provider import ConsoleInteractionProvider

__all__ = ["ConsoleInteractionProvider"]


def __getattr__(name: str) -> Any:
    # Lazy: every ``afk`` command imports this package, and the provider pulls in the runner.
    if name == "ConsoleInteractionProvider":
        from afk.cli.console_provider import ConsoleInteractionProvider

        return ConsoleInteractionProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
