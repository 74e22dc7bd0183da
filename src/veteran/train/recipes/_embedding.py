"""What the recipes built on an embedding model (`classifier`, `fewshot`) share: their embedder,
given by the caller (tests pass a small one) or the shipped MiniLM, loaded on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veteran.memory.types import Embedder


class EmbeddingRecipe:
    def __init__(self, embedder: Embedder | None = None) -> None:
        self._given = embedder
        self._loaded: dict[bool, Embedder] = {}

    def embedder(self, *, int8: bool = False) -> Embedder:
        """The embedder given, else the shipped MiniLM (`int8`: its quantized flavour)."""
        if self._given is not None:
            return self._given
        if int8 not in self._loaded:
            from veteran.memory.embed import MiniLMEmbedder

            self._loaded[int8] = MiniLMEmbedder(int8=int8)
        return self._loaded[int8]
