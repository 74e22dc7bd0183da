"""Editing veteran.toml in place: `tomlkit` keeps its comments and layout, and a new text is
validated by `load_config` before it replaces the file (written beside it, then renamed), so
a failed edit never leaves a workspace that does not load.

Used by `veteran drill --apply` and `veteran models promote | rollback`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomlkit

from veteran.config import Config, load_config
from veteran.errors import ConfigError, VeteranError


def toml_number(value: float) -> int | float:
    """A weight as TOML shows it best: `3` rather than `3.0`, and no float noise."""
    return int(value) if float(value).is_integer() else round(float(value), 9)


def function_table(doc: Any, name: str) -> Any:
    """`[functions.NAME]` of a parsed document; an error when it is gone."""
    try:
        return doc["functions"][name]
    except KeyError:
        raise VeteranError(f"veteran.toml has no [functions.{name}] any more") from None


def write_config(path: Path, doc: Any, *, expected: str) -> Config:
    """Replace `path` with `doc` once the new text loads; refuses (leaving `path` untouched)
    when it does not, or when `path` no longer holds `expected` (it changed since it was read)."""
    text = tomlkit.dumps(doc)
    tmp = path.with_name(f".{path.name}.edit.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        try:
            config = load_config(tmp)
        except ConfigError as exc:
            where = f"{exc.key}: " if exc.key else ""
            raise VeteranError(f"{path} not changed: the edit would not load: "
                               f"{where}{exc.problem}") from None
        if path.read_text(encoding="utf-8") != expected:
            raise VeteranError(f"{path} changed while veteran was editing it; not written, "
                               "try again")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return config
