"""`Gateway`: what a running gateway holds (config, providers, router, store, capture writer)
and its one call path (`prepare`, then `call` or `call_stream`: see call.py).

A gateway runs background jobs while it runs (`keep`): which ones is decided by whoever composes
it (`veteran.serving` for `veteran serve`: the switch poller and the canaries; `running` here for
in-process work such as evaluations: the switch poller)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veteran.config import Config
from veteran.gateway import live
from veteran.gateway.call import (
    Answer,
    AnswerCache,
    AnswerStream,
    Call,
    CallHook,
    run_call,
    run_stream,
)
from veteran.gateway.fewshot import Fewshot, FewshotCaller, wanted
from veteran.gateway.metrics import CallMetrics
from veteran.gateway.policy import PolicyHook
from veteran.gateway.recall import Recall, Recalled
from veteran.gateway.resilience import Caller
from veteran.gateway.routing import Route, Router
from veteran.providers.base import Provider
from veteran.providers.registry import provider_class
from veteran.store import CaptureWriter, Store, new_id
from veteran.types import TrajectoryRecord, now

if TYPE_CHECKING:
    from veteran.workspace import Workspace

log = logging.getLogger("veteran.gateway")
Job = Callable[["Gateway"], Coroutine[Any, Any, None]]


class Gateway:
    def __init__(self, config: Config, store: Store, *, spool_dir: Path | None = None,
                 memory_dir: Path | None = None, workspace: Workspace | None = None) -> None:
        """`spool_dir`: where captures wait while the store is unavailable (the workspace's
        `spool/`); without it they are dropped and counted.
        `memory_dir`: where search indexes are cached (the workspace's `memory/`); without it
        they are rebuilt from the store when first used.
        `workspace`: fewshot models are read from its `models/` (else from that of the folder
        the config was read from)."""
        self.config = config
        self.store = store
        self.workspace = workspace
        self.providers: dict[str, Provider] = {
            name: provider_class(settings.kind)(name, settings)
            for name, settings in config.providers.items()
        }
        self.router = Router(config, self.providers)
        self.memory_dir = memory_dir
        self.recall = Recall(config, store, memory_dir)
        self.fewshot = self._fewshot(config, None)
        self.caller = self._caller(self.providers, self.fewshot, None)
        self.metrics = CallMetrics()  # counted by the call path, shown by GET /metrics
        self.reconfigured: list[Callable[[Config], None]] = []  # told of each new config
        # The company's rules (gateway/policy.py): the first hook of every call.
        self.policy = PolicyHook(self)
        self.hooks: list[CallHook] = [self.policy]  # applied to every call, in order
        self.digest: str | None = None  # of the config text served (live.py), once known
        # Providers not started yet: with `start(eager=False)` each starts on first use.
        self.unstarted: dict[str, Provider] = dict(self.providers)
        self.eager = True  # set by `start`
        self._starting = asyncio.Lock()
        self._reloading = asyncio.Lock()
        self._retired: list[asyncio.Task[None]] = []
        self._jobs: dict[str, Job] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.writer: CaptureWriter = store.writer(
            batch_max=config.capture.batch_max, spool_dir=spool_dir,
            spool_max_bytes=config.capture.spool_max_bytes,
        )
        self.durable = config.capture.durable
        self.max_body = config.server.max_body_bytes

    @classmethod
    def for_workspace(cls, config: Config, store: Store, workspace: Workspace) -> Gateway:
        """A gateway whose captures spool in the workspace's `spool/` while the store is away,
        with search indexes cached in its `memory/` and fewshot models read from its
        `models/`."""
        return cls(config, store, spool_dir=workspace.path / "spool",
                   memory_dir=workspace.path / "memory", workspace=workspace)

    def keep(self, name: str, job: Job) -> None:
        """Run `job(gateway)` in the background while the gateway runs (from `start`, or now
        when it already runs); it is cancelled by `close`."""
        self._jobs[name] = job

    def _fewshot(self, config: Config, before: Fewshot | None) -> Fewshot | None:
        """Variants with fewshot have their examples put in by the caller (models kept from
        `before`, the fewshot of the config this one replaces)."""
        if not wanted(config):
            return None
        folder = self.workspace.path if self.workspace is not None else config.folder
        return Fewshot(config, self.recall, folder / "models" if folder else None,
                       loaded=before)

    def _caller(self, providers: dict[str, Provider], fewshot: Fewshot | None,
                before: Caller | None) -> Caller:
        """The caller over `providers`, keeping `before`'s switches and the breakers of the
        providers it shares with it (a reload restarts no unchanged provider's count)."""
        disabled = before.disabled if before is not None else {}
        caller = (Caller(providers, disabled) if fewshot is None
                  else FewshotCaller(providers, disabled, fewshot))
        if before is not None:
            for name, provider in providers.items():
                if self.providers.get(name) is provider and name in before.breakers:
                    kept = caller.breakers[name] = before.breakers[name]
                    kept.settings = provider.settings.breaker  # adopted settings included
        return caller

    async def start(self, *, eager: bool = True) -> None:
        """Start serving. `eager`: start every provider now (a server: the first request waits
        for no model to load); else each starts on its first call (in-process work such as an
        evaluation loads only what its variants use). Cheap checks come first either way."""
        self.eager = eager
        if eager:  # lazily started providers are checked when they start
            for provider in self.providers.values():
                provider.check()  # a missing API key is reported before any model loads
        await self.refresh_switches()
        await self.recall.start()
        if self.fewshot is not None:
            await self.fewshot.start()  # a missing model is a ConfigError: refuse to start
        self.writer.start()
        try:
            if eager:
                await self._start_providers(list(self.providers.values()))
        except BaseException:
            await self.writer.close()
            raise
        self._tasks = [asyncio.create_task(job(self), name=f"veteran-{name}")
                       for name, job in self._jobs.items()]

    async def _start_providers(self, providers: list[Provider]) -> None:
        """Start `providers` (all or none: those started are closed again on a failure)."""
        started: list[Provider] = []
        try:
            for provider in providers:
                await provider.start()
                started.append(provider)
        except BaseException:
            for provider in started:
                await provider.close()
            raise
        for provider in started:
            self.unstarted.pop(provider.name, None)

    async def ready(self, route: Route) -> None:
        """Start the providers `route` may call that have not started yet (lazy start)."""
        wanted_now = [r.provider for r in route.plan()
                      if self.unstarted.get(r.provider.name) is r.provider]
        if wanted_now:
            async with self._starting:
                await self._start_providers(
                    [p for p in wanted_now if self.unstarted.get(p.name) is p])

    async def reload(self, config: Config, digest: str | None = None) -> list[str]:
        """Serve `config` from now on (live.py says what applies and what needs a restart):
        unchanged providers are kept as they are, changed ones adopt their settings in place
        or are replaced, and routes, fewshot, recall and limits follow, all swapped at once
        (calls in flight finish on what they started with). Returns notes for the log."""
        async with self._reloading:
            config, notes = live.effective(self.config, config)
            providers: dict[str, Provider] = {}
            fresh: list[Provider] = []
            for name, settings in config.providers.items():
                current = self.providers.get(name)
                if current is not None and current.settings.kind == settings.kind and (
                        current.settings == settings or current.adopt(settings)):
                    providers[name] = current
                    continue
                provider = provider_class(settings.kind)(name, settings)
                provider.check()
                providers[name] = provider
                fresh.append(provider)
            router = Router(config, providers)
            fewshot = self._fewshot(config, self.fewshot)
            if fewshot is not None:
                await fewshot.start()  # a missing model refuses the config: the old one stays
            if self.eager:
                await self._start_providers(fresh)  # warm before the first call needs them
            caller = self._caller(providers, fewshot, self.caller)
            retired = [p for name, p in self.providers.items() if providers.get(name) is not p]
            # The swap: nothing below awaits, so no call sees half of it.
            self.unstarted = {n: p for n, p in self.unstarted.items() if providers.get(n) is p}
            if not self.eager:
                self.unstarted.update({p.name: p for p in fresh})
            self.config, self.providers, self.router = config, providers, router
            self.fewshot, self.caller, self.digest = fewshot, caller, digest
            self.recall.reconfigure(config)
            for listener in self.reconfigured:
                listener(config)
            for provider in retired:
                self._retired.append(asyncio.create_task(
                    live.retire(provider), name=f"veteran-retire-{provider.name}"))
            notes += [f"provider {p.name} started" for p in fresh]
            notes += [f"provider {p.name} retired" for p in retired if p.name not in providers]
            return notes

    async def refresh_switches(self) -> None:
        """Read which providers an operator switched off (the store is the source of truth)."""
        disabled = await asyncio.to_thread(self.store.disabled_providers)
        if disabled != self.caller.disabled:
            for name in disabled.keys() - self.caller.disabled.keys():
                log.warning("provider %s switched off by an operator", name)
            for name in self.caller.disabled.keys() - disabled.keys():
                log.warning("provider %s switched back on", name)
            self.caller.disabled = disabled

    async def close(self) -> None:
        for task in self._tasks:  # a canary run in flight is cancelled (stored: failed)
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for task in self._retired:  # providers a reload replaced: close them now
            task.cancel()
        for task in self._retired:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retired = []
        for provider in self.providers.values():
            if self.unstarted.get(provider.name) is provider:
                continue
            try:
                await provider.close()
            except Exception:
                log.exception("closing provider %s failed", provider.name)
        await self.writer.close()

    # The one call path.

    def prepare(self, body: dict[str, Any], *, route: Route | None = None,
                variant: str | None = None, episode_id: str | None = None,
                tags: dict[str, str] | None = None, started: float | None = None,
                recall: bool = True) -> Call:
        """A call of `body` (a checked chat-completions request), routed by its `model` (a
        function, or PROVIDER/MODEL) and `variant` unless `route` is given. Its trajectory id
        is known from here on; nothing is stored until it is run."""
        if route is None:
            route = self.router.resolve(body["model"], variant)
        created_at = now()
        record = TrajectoryRecord(
            id=new_id(created_at), episode_id=episode_id or new_id(created_at), request=body,
            created_at=created_at, function=route.function, stream=bool(body.get("stream")),
            tags=tags or {},
        )
        return Call(route, body, record, time.perf_counter() if started is None else started,
                    recall)

    async def call(self, call: Call, *, cache: AnswerCache | None = None) -> Answer:
        """Run `call` to a whole answer; exactly one trajectory is captured (call.py)."""
        return await run_call(self, call, cache)

    async def call_stream(self, call: Call) -> AnswerStream:
        """Run `call` as a stream: returns once the first chunk is in (call.py)."""
        return await run_stream(self, call)

    async def complete(self, body: dict[str, Any], *, tags: dict[str, str] | None = None
                       ) -> dict[str, Any]:
        """One whole answer to `body` (judges and other in-process callers): the call path
        with recall off; raises the provider's failure."""
        return (await self.call(self.prepare(body, tags=tags, recall=False))).response

    async def run_before(self, call: Call) -> None:
        for hook in self.hooks:
            await hook.before(call)

    async def run_after(self, call: Call, response: dict[str, Any]) -> None:
        for hook in self.hooks:
            await hook.after(call, response)

    def seal(self, call: Call) -> None:
        for hook in self.hooks:
            hook.seal(call)

    def remember(self, recalled: Recalled, response: dict[str, Any], trajectory_id: str) -> None:
        """Keep an answer in the semantic cache, off the event loop (nobody waits for it)."""
        if recalled.guard is None:
            return
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self.recall.remember, recalled, response,
                                      trajectory_id)
        future.add_done_callback(_remembered)

    async def capture(self, record: TrajectoryRecord) -> None:
        """Hand the trajectory to the writer; in durable mode, return once it is committed."""
        if self.durable:
            await self.writer.submit(record)
        else:
            self.writer.submit_nowait(record)

    def capture_nowait(self, record: TrajectoryRecord) -> None:
        self.writer.submit_nowait(record)


def _remembered(future: asyncio.Future[None]) -> None:
    """A semantic-cache write that failed is a warning naming the failure's type, never a
    traceback quoting the row (asyncio's "exception was never retrieved")."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("keeping an answer in the semantic cache failed (%s); it is answered "
                    "afresh next time", type(exc).__name__)


SWITCH_POLL_INTERVAL = 1.0  # seconds: how soon `veteran providers disable` applies


async def poll_switches(gateway: Gateway, interval: float = SWITCH_POLL_INTERVAL) -> None:
    """A background job: follow the provider switches in the store (`veteran providers
    disable`), keeping the last known ones while the store does not answer."""
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            await gateway.refresh_switches()
        except Exception as exc:
            if not failing:
                log.warning("reading provider switches failed (%s); keeping the last known "
                            "ones until the store answers", type(exc).__name__)
            failing = True
        else:
            failing = False


@contextlib.asynccontextmanager
async def running(config: Config, store: Store, workspace: Workspace | None = None
                  ) -> AsyncIterator[Gateway]:
    """A started gateway over `store` for in-process work (evaluations, judges, promotion
    gates), following the provider switches; closed on exit. Its captures spool in the
    workspace's `spool/` while the store is away."""
    gateway = (Gateway(config, store) if workspace is None
               else Gateway.for_workspace(config, store, workspace))
    gateway.keep("switches", poll_switches)
    await gateway.start(eager=False)  # only the providers its calls use are started
    try:
        yield gateway
    finally:
        await gateway.close()
