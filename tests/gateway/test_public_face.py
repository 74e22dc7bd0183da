"""Other rooms use the gateway through its public face (`veteran.gateway`), never through the
modules behind it: those can then change freely, and the one call path stays the one door."""

from __future__ import annotations

import ast
from pathlib import Path

import veteran
import veteran.gateway

SRC = Path(veteran.__file__).resolve().parent


def private_gateway_imports(source: str) -> list[str]:
    """The `veteran.gateway.<module>` names a module's source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n.startswith("veteran.gateway.")]
    return found


def test_the_scanner_sees_a_private_import() -> None:
    assert private_gateway_imports("from veteran.gateway.core import Gateway\n") == [
        "veteran.gateway.core"]
    assert private_gateway_imports("def f():\n    import veteran.gateway.call\n") == [
        "veteran.gateway.call"]
    assert private_gateway_imports("from veteran.gateway import Gateway\n") == []


def test_no_room_reaches_behind_the_gateways_face() -> None:
    offenders = {
        str(path.relative_to(SRC)): found
        for path in SRC.rglob("*.py")
        if "gateway" not in path.relative_to(SRC).parts[:1]
        for found in [private_gateway_imports(path.read_text(encoding="utf-8"))] if found
    }
    assert not offenders, offenders


def test_the_public_face_is_what_it_says() -> None:
    for name in veteran.gateway.__all__:
        assert hasattr(veteran.gateway, name), name
