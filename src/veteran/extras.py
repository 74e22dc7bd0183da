"""Optional packages, and the extra that brings each.

`pip install veteran` is the gateway, the store, feedback, evaluations and memory (keyword
search, and MiniLM embeddings on ONNX Runtime): nothing in it imports torch. Heavier packages
come with extras and are imported only where they are used, through `require`, so a missing one
fails with the command that installs it rather than a bare `ModuleNotFoundError`:

- `local`: the in-process model (torch, transformers, accelerate, gguf);
- `train`: datasets, environments and training recipes (`local`, plus datasets, pyarrow, TRL,
  peft, verifiers, matplotlib);
- `postgres`: PostgreSQL as the store (psycopg).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from veteran.errors import VeteranError

EXTRAS = ("local", "train", "postgres")


def install_hint(extra: str) -> str:
    """The command that installs `extra`, as messages quote it."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")
    return f"pip install 'veteran[{extra}]'"


def require(module: str, *, extra: str, purpose: str,
            error: type[VeteranError] = VeteranError) -> ModuleType:
    """Import `module`, or raise `error` saying that `purpose` needs it and which extra brings it.

    `error` lets a caller keep its own exception type (a recipe raises `RecipeError`) while the
    wording stays the same everywhere.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise error(f"{purpose} needs {module.split('.')[0]!r}, which cannot be imported "
                    f"({exc}); run `{install_hint(extra)}`") from exc
