"""What the recipes built on an embedding model (`classifier`, `fewshot`) share: their embedder,
given by the caller (tests pass a small one) or the shipped MiniLM, loaded on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veteran.memory.types import Embedder


class EmbeddingRecipe:
    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from veteran.memory.embed import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder
