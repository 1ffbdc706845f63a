"""The backends' methods say what they do: :class:`~afk.store.store.RunStore` does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


def documented_as(protocol: type) -> Callable[[T], T]:
    """Class decorator: a method of the class that has no docstring of its own takes the
    one of the same name in ``protocol``. The backends implement RunStore without deriving
    from it (it is a Protocol), and its docstrings say what every method does."""

    def share(cls: T) -> T:
        for name, member in vars(cls).items():
            doc = getattr(getattr(protocol, name, None), "__doc__", None)
            if callable(member) and not getattr(member, "__doc__", None) and doc:
                member.__doc__ = doc
        return cls

    return share
