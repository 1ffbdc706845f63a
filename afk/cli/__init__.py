"""The `afk` command line and the terminal approval provider."""

from afk.cli.console_provider import ConsoleInteractionProvider

__all__ = ["ConsoleInteractionProvider"]
