"""The eval call cache: a model call's answer, keyed by everything that decides it.

The key is the SHA-256 of the provider's name and effective settings (its `fingerprint`: kind,
URL, headers, query, version, scripted rules; not timeouts, retries or prices, and never a
secret), the model, the exact body the provider receives (system prompt and params included)
and the epoch. So a re-run of a suite calls no model again, each epoch of a run is its own call,
and a provider pointed elsewhere or configured otherwise is called afresh. Answers older than
`[evals] cache_ttl` (default 1 day) are not used: a vendor can change the model behind a name,
and an old answer measures the model as it was. Gates call their candidate fresh whatever the
cache holds (`run_suite(fresh=...)`).

The answers live in a SQLite file in the workspace (`evals/.cache/calls.db`), kept by the store
(`veteran.store.callcache`, which says why it is a file of its own).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from veteran.store.callcache import CachedCall, CallCache

__all__ = ["CACHE_FILE", "KEY_VERSION", "CachedCall", "CallCache", "call_key"]

CACHE_FILE = Path("evals") / ".cache" / "calls.db"
KEY_VERSION = 2  # 2: the provider's settings are part of the key (1 had its name only)


def call_key(provider: str, settings: dict[str, Any], model: str, body: dict[str, Any],
             epoch: int) -> str:
    """`settings`: the provider's `fingerprint(model)`."""
    data = {"version": KEY_VERSION, "provider": provider, "settings": settings, "model": model,
            "body": body, "epoch": epoch}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
