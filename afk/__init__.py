"""afk: LLM agents whose risky actions are gated by policy and approved by people."""

from afk.errors import AfkError

__version__ = "0.1.0"

__all__ = ["AfkError", "__version__"]
