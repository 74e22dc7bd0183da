"""Dynamic in-context examples: a variant with `fewshot = { model = "ID", k = K }` gets, before
each call, the `k` examples of the registered fewshot model `WORKSPACE/models/ID/` whose user
messages are most similar to the request's last user message, as user/assistant turns after
the leading system messages (most similar last, nearest the question). Works with any provider.

The selection lives in the caller (`FewshotCaller`), so every path that calls a variant gets it:
the chat surfaces, evaluations and canaries. The examples chosen for the variant that was
picked are sent to its fallbacks too: they are the function's own examples, and re-selecting
per attempt would cost an embedding each. The trajectory's `context` says which examples were
used (`{"fewshot": {"model", "k", "examples": [trajectory ids], "scores": [...]}}`, in prompt
order), and its `request` holds them as the provider received them.

Models load when the gateway starts: a missing or broken one is a `ConfigError` naming the
variant's key, so `veteran serve` refuses to start rather than serve without them. A gateway
without a fewshot variant makes no `Fewshot` and its caller is the plain one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veteran.config import Config, FewshotConfig
from veteran.errors import ConfigError, HTTPError, VeteranError
from veteran.gateway.resilience import Caller, Stream
from veteran.models import FewshotExamples, embedder_named, input_text, read_manifest
from veteran.providers.base import Provider

if TYPE_CHECKING:
    from veteran.gateway.recall import Recall
    from veteran.gateway.routing import Route
    from veteran.memory.types import Embedder
    from veteran.types import TrajectoryRecord

SYSTEM_ROLES = ("system", "developer")


def wanted(config: Config) -> dict[str, str]:
    """Fewshot model id -> the first config key naming it."""
    out: dict[str, str] = {}
    for fname, function in config.functions.items():
        for vname, variant in function.variants.items():
            if variant.fewshot is not None:
                out.setdefault(variant.fewshot.model, f"functions.{fname}.variants.{vname}."
                                                      "fewshot.model")
    return out


def with_examples(messages: Sequence[Any], turns: list[dict[str, Any]]) -> list[Any]:
    """`turns` put after the leading system (and developer) messages."""
    lead = 0
    while lead < len(messages) and isinstance(messages[lead], dict) and (
            messages[lead].get("role") in SYSTEM_ROLES):
        lead += 1
    return [*messages[:lead], *turns, *messages[lead:]]


class Fewshot:
    def __init__(self, config: Config, recall: Recall, models_dir: Path | None, *,
                 loaded: Fewshot | None = None) -> None:
        """`loaded`: the fewshot of the config this one replaces (live reload): the models
        and embedders it loaded are kept, not loaded again."""
        self._wanted = wanted(config)
        self._shown = str(config.folder / "veteran.toml") if config.folder else "veteran.toml"
        self._recall = recall
        self._models_dir = models_dir
        self._models: dict[str, tuple[FewshotExamples, Embedder]] = {}
        self._embedders: dict[str, Embedder] = {}
        if loaded is not None:
            self._models = {m: v for m, v in loaded._models.items() if m in self._wanted}
            self._embedders = dict(loaded._embedders)
        self._lock = threading.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._load_all)

    def _load_all(self) -> None:
        """Load every model named by a variant, and warm their embedders (a model's first use
        would otherwise load its weights while a request waits)."""
        warmed: set[int] = set()
        for model_id, key in self._wanted.items():
            try:
                _, embedder = self._load(model_id)
                if id(embedder) not in warmed:
                    embedder.embed(["warm up"])
                    warmed.add(id(embedder))
            except VeteranError as exc:
                raise ConfigError(self._shown, key, exc.message) from None

    def _load(self, model_id: str) -> tuple[FewshotExamples, Embedder]:
        if (found := self._models.get(model_id)) is not None:
            return found
        with self._lock:
            if (found := self._models.get(model_id)) is not None:
                return found
            if self._models_dir is None:
                raise VeteranError("this gateway has no workspace folder to find models in")
            folder = self._models_dir / model_id
            kind = read_manifest(folder)["kind"]
            if kind != "fewshot":
                raise VeteranError(f"model {model_id!r} is a {kind} model, not a fewshot one")
            examples = FewshotExamples.load(folder)
            embedder = self._embedder(examples.embedder)
            if examples.vectors.shape[1] != embedder.dim:
                raise VeteranError(f"model {model_id!r} holds {examples.vectors.shape[1]}-"
                                   f"dimensional embeddings; {embedder.name} gives "
                                   f"{embedder.dim}")
            self._models[model_id] = (examples, embedder)
            return examples, embedder

    def _embedder(self, name: str) -> Embedder:
        """The gateway's memory embedder when the examples were embedded with it (one model
        in memory, usually the shipped MiniLM), else one of that name of our own."""
        shared = self._recall.embedder()
        if shared.name == name:
            return shared
        if name not in self._embedders:
            self._embedders[name] = embedder_named(name)
        return self._embedders[name]

    def select(self, spec: FewshotConfig, body: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The body with the examples put in, and what the trajectory records (call it in a
        worker thread: it embeds)."""
        try:
            examples, embedder = self._load(spec.model)
        except VeteranError as exc:
            raise HTTPError(f"fewshot model {spec.model!r} is unavailable: {exc.message}",
                            code="fewshot_model_unavailable") from None
        query = input_text(body.get("messages") or [])
        chosen = examples.nearest(embedder.embed([query])[0], spec.k) if query else []
        chosen.reverse()  # most similar last, nearest the question
        turns: list[dict[str, Any]] = []
        for i, _ in chosen:
            turns.append({"role": "user", "content": examples.users[i]})
            turns.append({"role": "assistant", "content": examples.answers[i]})
        used = {"model": spec.model, "k": spec.k, "examples": [examples.ids[i] for i, _ in chosen],
                "scores": [round(score, 6) for _, score in chosen]}
        return {**body, "messages": with_examples(body["messages"], turns)}, used

    async def apply(self, spec: FewshotConfig, body: dict[str, Any], record: TrajectoryRecord
                    ) -> dict[str, Any]:
        body, used = await asyncio.to_thread(self.select, spec, body)
        record.context = {**(record.context or {}), "fewshot": used}
        return body


class FewshotCaller(Caller):
    """The caller of a gateway with fewshot variants: puts a route's examples into the body,
    then calls as usual. Routes without fewshot cost one attribute check."""

    def __init__(self, providers: dict[str, Provider], disabled: dict[str, str],
                 fewshot: Fewshot) -> None:
        super().__init__(providers, disabled)
        self.fewshot = fewshot

    async def complete(self, route: Route, body: dict[str, Any], record: TrajectoryRecord
                       ) -> tuple[dict[str, Any], Route]:
        if route.fewshot is not None:
            body = await self.fewshot.apply(route.fewshot, body, record)
        return await super().complete(route, body, record)

    async def stream(self, route: Route, body: dict[str, Any], record: TrajectoryRecord
                     ) -> tuple[Stream, Route]:
        if route.fewshot is not None:
            body = await self.fewshot.apply(route.fewshot, body, record)
        return await super().stream(route, body, record)
