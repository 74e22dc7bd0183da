"""Editing veteran.toml in place: `tomlkit` keeps its comments and layout, and a new text is
validated by `load_config` before it replaces the file (written beside it, flushed, then
renamed over it), so a failed edit never leaves a workspace that does not load, and a crash
mid-edit leaves the old file or the new one.

Used by `veteran drill --apply` and `veteran models promote | rollback`.

A commented file introduces each section with comments after a blank line (`# --- Functions:
...`), and tomlkit keeps those at the end of the section before. Appending there, as tomlkit
does, would put a new key or table under the next section's header: `add_entry` and
`remove_entry` keep such a block where it reads, just before the section it introduces.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, Item, Null, Table, Whitespace

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


def add_entry(table: Any, key: str, value: Any) -> None:
    """`table[key] = value` for a new `key`, placed after the table's own lines but before the
    comments that introduce the next section (which are moved to follow the new entry)."""
    moved = _detach_tail(table)
    table[key] = value
    _attach_tail(table, moved)


def remove_entry(table: Any, key: str) -> None:
    """`del table[key]`; when the entry is a table ending with the comments that introduce the
    next section, those stay, at the end of what now comes before that section."""
    entry = table[key]
    body = _body(table)
    if body is None or not isinstance(entry, (Table, AoT)):
        del table[key]
        return
    keyed = [(k.key, item) for k, item in body if k is not None and not isinstance(item, Null)]
    names = [name for name, _ in keyed]
    at = names.index(key)
    before = keyed[at - 1][1] if at > 0 else None
    if isinstance(before, (Table, AoT)):
        moved = _detach_tail(entry)
        del table[key]
        _attach_tail(before, moved)
    elif at == len(keyed) - 1:
        moved = _detach_tail(entry)
        del table[key]
        _attach_tail(table, moved)
    else:  # the first table after plain keys, with tables after it: its text goes with it
        del table[key]


def _body(item: Any) -> list[tuple[Any, Item]] | None:
    """The items of a table or document, in the order they are written; None for what has no
    lines of its own (an inline table, or a table tomlkit shows through a proxy because it is
    written in pieces)."""
    if isinstance(item, Container):
        return item.body
    if isinstance(item, Table):
        return item.value.body
    return None


def _tail(item: Any) -> list[tuple[Any, Item]] | None:
    """The body whose end is the end of `item`'s text: a last entry that is a table (or an
    array of tables) writes its own lines last."""
    body = _body(item)
    while body is not None:
        keyed = [v for k, v in body if k is not None and not isinstance(v, Null)]
        last = keyed[-1] if keyed else None
        if isinstance(last, AoT) and last.body:
            last = last.body[-1]
        if not isinstance(last, Table):
            return body
        body = _body(last)
    return None


def _detach_tail(item: Any) -> list[Item]:
    """Remove and return the comments ending `item`'s text from its last blank line on (the
    next section's introduction); the comments right below its last entry stay with it."""
    body = _tail(item)
    if body is None:
        return []
    end = len(body)
    while end and body[end - 1][0] is None and isinstance(body[end - 1][1],
                                                           (Comment, Whitespace, Null)):
        end -= 1
    cut = next((i for i in range(end, len(body))
                if isinstance(body[i][1], Whitespace) and "\n" in body[i][1].as_string()), None)
    if cut is None:
        return []
    moved = [v for _, v in body[cut:] if not isinstance(v, Null)]
    # Only unnamed items after the last named one: the indexes tomlkit keeps stay true.
    del body[cut:]
    return moved


def _attach_tail(item: Any, moved: list[Item]) -> None:
    """Put `moved` (from `_detach_tail`) back at the end of `item`'s text."""
    body = _tail(item)
    if not moved or body is None:
        return
    last = body[-1][1] if body else None
    if isinstance(last, Whitespace) and isinstance(moved[0], Whitespace):
        moved = moved[1:]  # one blank line between sections, not two
    body.extend((None, m) for m in moved)


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
