"""Editing veteran.toml in place: `tomlkit` keeps its comments and layout, and a new text is
validated by `load_config` before it replaces the file (written beside it, flushed, then
renamed over it), so a failed edit never leaves a workspace that does not load, and a crash
mid-edit leaves the old file or the new one.

Used by `veteran drill --apply` and `veteran models promote | rollback`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
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


def write_config(path: Path, doc: Any, *, expected: str,
                 check: Callable[[Config], None] | None = None) -> Config:
    """Replace `path` with `doc` once the new text loads (and passes `check`, which raises a
    `VeteranError` to refuse); refuses, leaving `path` untouched, when it does not, or when `path`
    no longer holds `expected` (it changed since it was read).

    The new text is validated in a temporary file beside `path`, flushed to disk, and renamed
    over it (`os.replace`, atomic on POSIX and Windows): a reader, or a crash, sees the old file
    or the new one, never a half-written or unvalidated one. The file keeps its permissions."""
    text = tomlkit.dumps(doc)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".edit.tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        try:
            config = load_config(tmp)
        except ConfigError as exc:
            where = f"{exc.key}: " if exc.key else ""
            raise VeteranError(f"{path} not changed: the edit would not load: "
                               f"{where}{exc.problem}") from None
        if check is not None:
            check(config)
        if path.read_text(encoding="utf-8") != expected:
            raise VeteranError(f"{path} changed while veteran was editing it; not written, "
                               "try again")
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return config


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; folders cannot be opened for this on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
