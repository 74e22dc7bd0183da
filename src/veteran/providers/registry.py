"""Find provider classes by `kind` through the `veteran.providers` entry-point group.

Built-in providers (openai, local, mock) are declared in veteran's own `pyproject.toml` under the
same group, so a third-party package adds a provider exactly the way veteran adds its own. The
group is read once, in `veteran.config` (which validates each provider table by its kind's
`Settings` and must not import this room); this module adds the check that a kind names a
`Provider`.
"""

from __future__ import annotations

from veteran.config import PROVIDER_GROUP as GROUP
from veteran.config import provider_entry_points as _entry_points
from veteran.config import provider_kinds as kinds
from veteran.providers.base import Provider

__all__ = ["GROUP", "kinds", "provider_class"]


def provider_class(kind: str) -> type[Provider]:
    """The class registered for `kind`; `KeyError` when no installed package provides it."""
    ep = _entry_points()[kind]
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"entry point {GROUP}:{kind} is not a veteran Provider subclass")
    return cls
