"""Find provider classes by `kind` through the `veteran.providers` entry-point group.

Built-in providers (openai, local, mock) are declared in veteran's own `pyproject.toml` under the
same group, so a third-party package adds a provider exactly the way veteran adds its own.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from veteran.providers.base import Provider

GROUP = "veteran.providers"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def kinds() -> list[str]:
    """Every provider kind that is installed."""
    return sorted(_entry_points())


def provider_class(kind: str) -> type[Provider]:
    """The class registered for `kind`; `KeyError` when no installed package provides it."""
    ep = _entry_points()[kind]
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"entry point {GROUP}:{kind} is not a veteran Provider subclass")
    return cls
