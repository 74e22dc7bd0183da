"""The rooms' layers (pyproject.toml `[tool.importlinter]`) hold, so `make test` keeps them as
well as `make imports`: a room imports only from the rooms below it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extra (pip install -e '.[dev]')")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def contracts() -> list[dict[str, Any]]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        found: list[dict[str, Any]] = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    return found


def test_the_rooms_import_only_from_rooms_below_them() -> None:
    done = lint_imports(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_same_layers_upside_down_break(tmp_path: Path) -> None:
    """The check sees the real imports: with the order reversed it must fail."""
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    upside_down = ", ".join(f'"{line}"' for line in reversed(layers["layers"]))
    config = tmp_path / "upside-down.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "veteran"\n\n'
        '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
        f'containers = ["veteran"]\nlayers = [{upside_down}]\n', encoding="utf-8")
    done = lint_imports(config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "veteran.config is not allowed to import veteran.errors" in done.stdout
