"""A deterministic embedder for tests: no model, no network, and it counts its calls."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from veteran.memory.types import Vectors

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of words: each lower-cased word adds ±1 to one of `dim` buckets chosen by its hash,
    rows L2-normalised. Texts sharing words are close, so retrieval tests mean something.
    Tokens are whitespace-separated words."""

    def __init__(self, dim: int = 64, name: str | None = None) -> None:
        self.dim = dim
        self.name = name or f"test-hash-{dim}"
        self.calls = 0  # embed() calls
        self.texts = 0  # texts embedded, over all calls

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dim] += 1.0 if (value >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = out / norms
        return normalised

    def count_tokens(self, text: str) -> int:
        return len(text.split())
