"""The eval call cache: a model call's answer, keyed by everything that decides it.

The key is the SHA-256 of the provider, the model, the exact body the provider receives (system
prompt and params included) and the epoch, so a re-run of a suite calls no model again, while
each epoch of a run is its own call. The answers live in a SQLite file in the workspace
(`evals/.cache/calls.db`), kept by the store (`veteran.store.callcache`, which says why it is a
file of its own).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from veteran.store.callcache import CallCache

__all__ = ["CACHE_FILE", "CallCache", "call_key"]

CACHE_FILE = Path("evals") / ".cache" / "calls.db"


def call_key(provider: str, model: str, body: dict[str, Any], epoch: int) -> str:
    data = {"provider": provider, "model": model, "body": body, "epoch": epoch}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
