"""`POST /v1/kb/{collection}/search` (hybrid search over institutional memory) and
`POST /v1/embeddings` (OpenAI's embeddings wire format, served by the shipped MiniLM model).

Embedding and searching run in worker threads (`asyncio.to_thread`), never on the event loop:
a MiniLM forward pass takes milliseconds of CPU, and the first call loads the model.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import math
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from veteran.errors import BadRequest
from veteran.gateway.core import Gateway
from veteran.gateway.http import json_response, read_json_object
from veteran.memory.embed import LOCAL_NAMES, MINILM, MiniLMEmbedder
from veteran.memory.search import MODES
from veteran.memory.types import Embedder, Hit

SEARCH_FIELDS = frozenset({"query", "k", "filters", "mode", "min_score"})
MAX_K = 100
MAX_INPUTS = 2048  # OpenAI's limit on inputs per embeddings request


def parse_search(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - SEARCH_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}", param=unknown[0])
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` must be a non-empty string", param="query")
    k = body.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadRequest(f"`k` must be an integer from 1 to {MAX_K}", param="k")
    filters = body.get("filters") or {}
    if not isinstance(filters, dict):
        raise BadRequest("`filters` must be an object of metadata key: value", param="filters")
    for key, value in filters.items():
        if not (isinstance(value, str | int | bool)
                or (isinstance(value, float) and math.isfinite(value))):
            raise BadRequest(f"filter {key!r} must be a string, number or boolean",
                             param="filters")
    mode = body.get("mode", "hybrid")
    if mode not in MODES:
        raise BadRequest(f"`mode` must be one of {', '.join(MODES)}", param="mode")
    min_score = body.get("min_score", 0.0)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not (
            0.0 <= min_score <= 1.0):
        raise BadRequest("`min_score` must be a number from 0 to 1", param="min_score")
    return {"query": query, "k": k, "filters": filters or None, "mode": mode,
            "min_score": float(min_score)}


def hit_json(hit: Hit) -> dict[str, Any]:
    chunk = hit.chunk
    return {"id": chunk.id, "source": chunk.source, "text": chunk.text, "score": hit.score,
            "bm25_rank": hit.bm25_rank, "dense_rank": hit.dense_rank,
            "similarity": hit.similarity, "keywords": hit.keywords, "metadata": chunk.metadata}


async def kb_search(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    collection: str = request.path_params["collection"]
    params = parse_search(await read_json_object(request, gateway.max_body))

    def run() -> list[Hit]:
        _, index = gateway.recall.memory()
        hits: list[Hit] = index.search(collection, **params)
        return hits

    hits = await asyncio.to_thread(run)
    return json_response({"object": "list", "data": [hit_json(hit) for hit in hits]})


def parse_embeddings(body: dict[str, Any]) -> tuple[list[str], str, str]:
    model = body.get("model")
    if not isinstance(model, str) or model not in LOCAL_NAMES:
        raise BadRequest(f"unknown embedding model {model!r}; available: "
                         f"{', '.join(LOCAL_NAMES)}", param="model", code="model_not_found")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise BadRequest("`input` must be a string or a non-empty array of strings",
                         param="input")
    if not all(isinstance(text, str) for text in texts):
        raise BadRequest("`input` must hold strings: token-id arrays are not accepted",
                         param="input")
    if len(texts) > MAX_INPUTS:
        raise BadRequest(f"`input` holds more than {MAX_INPUTS} strings", param="input")
    if any(not text for text in texts):
        raise BadRequest("`input` must not contain empty strings", param="input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("`encoding_format` must be \"float\" or \"base64\"",
                         param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != MiniLMEmbedder.dim:
        raise BadRequest(f"model {MINILM} gives {MiniLMEmbedder.dim} dimensions only",
                         param="dimensions")
    return texts, model, encoding


async def embeddings(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    texts, _, encoding = parse_embeddings(await read_json_object(request, gateway.max_body))

    def run() -> tuple[np.ndarray[Any, Any], int]:
        embedder = _minilm(gateway)
        vectors = embedder.embed(texts)
        return vectors, sum(embedder.count_tokens(text) for text in texts)

    vectors, tokens = await asyncio.to_thread(run)
    data: list[dict[str, Any]] = []
    for i, row in enumerate(vectors):
        embedding: Any
        if encoding == "base64":
            embedding = base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
        else:
            embedding = row.tolist()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return json_response({"object": "list", "data": data, "model": MINILM,
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _minilm(gateway: Gateway) -> Embedder:
    """The memory's embedder when it is MiniLM (one model in memory), else a MiniLM of its own."""
    embedder, _ = gateway.recall.memory()
    return embedder if isinstance(embedder, MiniLMEmbedder) else _own_minilm()


@functools.cache
def _own_minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()  # loads on first use; thread-safe
