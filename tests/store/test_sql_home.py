"""SQL has one home, `src/veteran/store/`: encryption, retention, erasure and export can only
hold if every byte written passes through it. This test reads every other module of the package
and fails on SQL anywhere else: a database driver or SQLAlchemy imported, SQL statements in
string literals, or a store's engine driven directly."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import veteran

PACKAGE = Path(veteran.__file__).parent
HOME = PACKAGE / "store"
SQL_MODULES = frozenset({
    "sqlalchemy", "sqlite3", "psycopg", "psycopg2", "psycopg_pool", "asyncpg", "aiosqlite",
    "alembic", "sqlmodel", "peewee", "duckdb",
})
# Statement shapes, uppercase as this code base writes SQL: a bare "DELETE" (an HTTP method)
# or "select ... from" in a sentence is not SQL.
SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\S+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|SCHEMA|DATABASE)\b"
    r"|\bDROP\s+(?:TABLE|INDEX|VIEW|SCHEMA)\b|\bALTER\s+TABLE\b|\bPRAGMA\s+\w+"
)
# Calls that drive a database without importing a driver: a store's engine used directly.
ENGINE_CALLS = frozenset({"exec_driver_sql", "raw_connection", "driver_connection"})


def violations(source: str, path: str = "<sample>") -> list[str]:
    """Every place in `source` that reaches a database (docstrings may name SQL freely)."""
    tree = ast.parse(source, path)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            names = []
        for name in names:
            if name.split(".")[0] in SQL_MODULES:
                found.append(f"{where}: imports {name}")
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings and SQL_TEXT.search(node.value)):
            found.append(f"{where}: SQL in a string: {node.value[:60]!r}")
        if isinstance(node, ast.Attribute) and (
            node.attr in ENGINE_CALLS
            or (node.attr in ("connect", "begin") and isinstance(node.value, ast.Attribute)
                and node.value.attr == "engine")
        ):
            found.append(f"{where}: drives a database directly (.{node.attr})")
    return found


def scan(folder: Path, *, skip: Path | None = None) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        if skip is not None and path.is_relative_to(skip):
            continue
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    return found


def test_sql_lives_only_in_the_store() -> None:
    found = scan(PACKAGE, skip=HOME)
    assert found == [], "SQL outside src/veteran/store/ (ask the store for an API):\n" + (
        "\n".join(found))


def test_the_scan_sees_the_sql_that_is_in_the_store() -> None:
    """The scan reads real files: pointed at the store, it finds what lives there."""
    found = "\n".join(scan(HOME))
    assert "imports sqlalchemy" in found
    assert "imports sqlite3" in found
    assert "SQL in a string: 'PRAGMA" in found


SAMPLE = '''
"""A module whose docstring may say SELECT id FROM trajectories."""
import sqlite3
import sqlalchemy as sa
from sqlalchemy.orm import Session
import psycopg.rows

ROUTES = {"DELETE": None}  # an HTTP method, not SQL
NOTE = "select the examples from the model"  # prose
QUERY = "SELECT id FROM trajectories WHERE id = ?"
WRITE = f"INSERT INTO {table} VALUES (?)"
MODE = "PRAGMA journal_mode=WAL"


def f(store, conn):
    """UPDATE t SET x = 1 in a docstring is documentation."""
    with store.engine.connect() as c:
        c.exec_driver_sql("VACUUM")
    store.engine.begin()
    conn.execute("DELETE FROM feedback")
'''


def test_the_scanner_finds_each_kind_of_sql() -> None:
    found = violations(SAMPLE)
    lines = {int(item.split(":")[1]) for item in found}
    text = "\n".join(found)
    for expected in ("imports sqlite3", "imports sqlalchemy", "imports sqlalchemy.orm",
                     "imports psycopg.rows", "'SELECT id FROM", "'INSERT INTO ",
                     "'PRAGMA journal_mode", ".connect", ".exec_driver_sql", ".begin",
                     "'DELETE FROM feedback'"):
        assert expected in text, expected
    assert not lines & {2, 8, 9, 16}  # docstrings, the HTTP method and the prose pass
    assert len(found) == 11, text
