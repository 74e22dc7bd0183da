"""Running a suite: every variant on every sample, `epochs` times, graded and stored.

Calls go through the gateway's own code path in-process (a `Gateway`: its router resolves the
variant, pinned, its caller applies retries, timeouts and breakers, its capture writer stores
the trajectory), not through HTTP: the same code that serves production traffic, without a
socket per call. Memory context and the semantic cache are left out on purpose: an evaluation
measures the variant on the sample as given, and a cached answer from production would
measure nothing. Each call is a trajectory tagged `eval_run`, `eval_suite`, `eval_sample`.

Calls are bounded per provider (`concurrency` workers each); results are committed in batches
as they finish, so `resume` skips every (sample, variant, epoch) already stored. Model answers
are cached on disk (see cache.py): a re-run calls no model again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veteran.config import Config
from veteran.evals import datasets
from veteran.evals.cache import CACHE_FILE, CallCache, call_key
from veteran.evals.errors import EvalError, Skip
from veteran.evals.graders import grader_from_config
from veteran.evals.runs import Key, Result, Runs
from veteran.evals.suite import Suite, Target
from veteran.evals.types import Complete, Grader, Output, Sample, Score
from veteran.gateway.core import Gateway, cost
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.gateway.routing import Route
from veteran.store import Store, new_id
from veteran.types import TrajectoryRecord, now, parse_timestamp
from veteran.workspace import Workspace

FLUSH_ROWS = 256
FLUSH_SECONDS = 0.25
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_id: str
    total: int  # (sample, variant, epoch) triples in the run
    skipped: int  # already stored (resumed)
    ran: int
    cached: int  # answered from the eval call cache
    errors: int  # calls that failed (stored, graded as failures)


@dataclass(frozen=True, slots=True)
class _Task:
    sample: Sample
    target: Target
    route: Route
    epoch: int


class Runner:
    def __init__(self, gateway: Gateway, runs: Runs, suite: Suite, samples: list[Sample],
                 graders: dict[str, Grader], *, cache: CallCache | None = None,
                 variants: list[str] | None = None, concurrency: int | None = None,
                 epochs: int | None = None) -> None:
        self.gateway = gateway
        self.runs = runs
        self.suite = suite
        self.samples = samples
        self.graders = graders
        self.cache = cache
        self.variants = variants or list(suite.config.variants)
        self.concurrency = concurrency or suite.config.concurrency
        self.epochs = epochs or suite.config.epochs
        self.targets = [Target.parse(v) for v in self.variants]
        self.routes = {t.name: gateway.router.resolve(t.model, t.variant) for t in self.targets}
        self._pending: list[Result] = []
        self._flush_lock = threading.Lock()
        self.run_id = ""

    def run_config(self) -> dict[str, Any]:
        """What is stored with the run (and what `resume` runs again)."""
        return {"suite": self.suite.config.model_dump(mode="json"), "variants": self.variants,
                "epochs": self.epochs, "concurrency": self.concurrency,
                "samples": len(self.samples)}

    def tasks(self, done: set[Key]) -> Iterator[_Task]:
        """Sample by sample, so an interrupted run has every variant's answer to most samples."""
        for epoch in range(self.epochs):
            for sample in self.samples:
                for target in self.targets:
                    if (sample.id, target.name, epoch) not in done:
                        yield _Task(sample, target, self.routes[target.name], epoch)

    async def run(self, run_id: str | None = None, progress: Progress | None = None
                  ) -> RunOutcome:
        """Run (or, given `run_id`, resume) the suite; returns once every result is stored."""
        if run_id is None:
            run_id = await asyncio.to_thread(self.runs.create, self.suite.name, self.run_config())
            done: set[Key] = set()
        else:
            await asyncio.to_thread(self.runs.set_status, run_id, "running")
            done = await asyncio.to_thread(self.runs.done, run_id)
        self.run_id = run_id
        total = len(self.samples) * len(self.targets) * self.epochs
        skipped = sum(1 for k in done if k[1] in self.routes and k[2] < self.epochs)
        if progress is not None and skipped:
            progress(skipped)
        by_provider: dict[str, list[_Task]] = {}
        for task in self.tasks(done):
            by_provider.setdefault(task.route.provider.name, []).append(task)
        counts = {"ran": 0, "cached": 0, "errors": 0}
        flusher = asyncio.create_task(self._flush_every(FLUSH_SECONDS))
        try:
            workers = []
            for tasks in by_provider.values():
                queue = iter(tasks)
                workers += [self._worker(queue, counts, progress)
                            for _ in range(min(self.concurrency, len(tasks)))]
            await asyncio.gather(*workers)
        except BaseException:
            flusher.cancel()
            await self._flush()
            await asyncio.to_thread(self.runs.set_status, run_id, "failed")
            raise
        flusher.cancel()
        await self._flush()
        await asyncio.to_thread(self.runs.set_status, run_id, "finished")
        return RunOutcome(run_id, total, skipped, counts["ran"], counts["cached"],
                          counts["errors"])

    async def _worker(self, queue: Iterator[_Task], counts: dict[str, int],
                      progress: Progress | None) -> None:
        for task in queue:  # workers share one iterator: each task is taken once
            result = await self._one(task)
            self._pending.append(result)
            counts["ran"] += 1
            counts["cached"] += result.cached
            counts["errors"] += result.output.get("error") is not None
            if len(self._pending) >= FLUSH_ROWS:
                await self._flush()
            if progress is not None:
                progress(1)

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._flush()

    async def _flush(self) -> None:
        """Store the finished results (and their cached answers) off the event loop. The lists
        are taken here, on the loop, so nothing appended meanwhile is lost."""
        pending, self._pending = self._pending, []
        answers = self.cache.take() if self.cache is not None else []
        await asyncio.shield(asyncio.to_thread(self._write, pending, answers))

    def _write(self, pending: list[Result], answers: list[Any]) -> None:
        with self._flush_lock:  # the periodic flush and a full batch's never overlap
            # the answers first: a stored result whose answer is not cached is a lost saving
            if self.cache is not None:
                self.cache.flush(answers)
            self.runs.add(self.run_id, pending)

    def request_body(self, sample: Sample, target: Target) -> dict[str, Any]:
        config = self.suite.config
        messages = list(sample.messages)
        if config.system:
            messages = [{"role": "system", "content": config.system}, *messages]
        body: dict[str, Any] = {**config.params, "model": target.model, "messages": messages}
        if sample.tools:
            body["tools"] = sample.tools
        return body

    async def _one(self, task: _Task) -> Result:
        body = self.request_body(task.sample, task.target)
        route = task.route
        upstream = route.upstream_body(body)
        if route.fewshot is not None:  # the examples are added later, by the caller: key on them
            upstream = {**upstream, "x-veteran-fewshot": route.fewshot.model_dump()}
        key = call_key(route.provider.name, route.model, upstream, task.epoch)
        tags = {"eval_run": self.run_id, "eval_suite": self.suite.name[:512],
                "eval_sample": task.sample.id[:512]}
        created_at = now()
        record = TrajectoryRecord(id=new_id(created_at), episode_id=new_id(created_at),
                                  request=body, created_at=created_at, function=route.function,
                                  tags=tags)
        hit = self.cache.get(key) if self.cache is not None else None
        started = time.perf_counter()
        if hit is not None:
            answer, call_cost, latency = hit
            record.variant, record.provider, record.model = (
                route.variant, route.provider.name, route.model)
            record.cached = True
            record.cost = 0.0
            record.context = {"eval_cache": key}
            record.response, record.usage = answer, answer.get("usage")
            record.latency_ms = (time.perf_counter() - started) * 1000
            await self.gateway.capture(record)
            output = _output(answer, record.id)
        else:
            try:
                answer, used = await self.gateway.caller.complete(route, body, record)
            except UPSTREAM_FAILURES as exc:
                record.status = "error"
                record.error = exc.message
                record.latency_ms = latency = (time.perf_counter() - started) * 1000
                await self.gateway.capture(record)
                output = Output(text="", trajectory_id=record.id, error=exc.message)
                call_cost = None
            else:
                record.latency_ms = record.ttft_ms = latency = (
                    (time.perf_counter() - started) * 1000)
                record.response, record.usage = answer, answer.get("usage")
                record.cost = call_cost = cost(used.prices, record.usage)
                await self.gateway.capture(record)
                if self.cache is not None:
                    self.cache.put(key, answer, call_cost, latency)
                output = _output(answer, record.id)
        scores = await self._grade(task.sample, output)
        return Result(
            sample_id=task.sample.id, variant=task.target.name, epoch=task.epoch,
            output={"text": output.text, "tool_calls": output.tool_calls, "error": output.error,
                    "metadata": task.sample.metadata},
            scores=scores, latency_ms=latency, cost=call_cost, cached=hit is not None,
            trajectory_id=record.id,
        )

    async def _grade(self, sample: Sample, output: Output) -> dict[str, dict[str, Any]]:
        scores: dict[str, dict[str, Any]] = {}
        for name, grader in self.graders.items():
            try:
                score = await grader.grade(sample, output)
            except Skip as skip:  # left out of this grader's statistics, with the reason
                scores[name] = {"skipped": skip.reason}
                continue
            except Exception as exc:
                scores[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            scores[name] = score_json(score)
        return scores


def score_json(score: Score) -> dict[str, Any]:
    out: dict[str, Any] = {"value": score.value, "passed": score.passed}
    if score.label is not None:
        out["label"] = score.label
    if score.explanation is not None:
        out["explanation"] = score.explanation
    return out


def _output(answer: dict[str, Any], trajectory_id: str) -> Output:
    choices = answer.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return Output(text=message.get("content") or "", tool_calls=message.get("tool_calls") or [],
                  completion=answer, trajectory_id=trajectory_id)


def gateway_complete(gateway: Gateway, run_id: Callable[[], str]) -> Complete:
    """A model call for LLM judges through the same gateway path (judge calls are trajectories,
    tagged `eval_run` and `eval_role=judge`)."""

    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        route = gateway.router.resolve(body["model"])
        created_at = now()
        record = TrajectoryRecord(id=new_id(created_at), episode_id=new_id(created_at),
                                  request=body, created_at=created_at, function=route.function,
                                  tags={"eval_run": run_id(), "eval_role": "judge"})
        started = time.perf_counter()
        try:
            answer, used = await gateway.caller.complete(route, body, record)
        except UPSTREAM_FAILURES as exc:
            record.status, record.error = "error", exc.message
            record.latency_ms = (time.perf_counter() - started) * 1000
            await gateway.capture(record)
            raise
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.response, record.usage = answer, answer.get("usage")
        record.cost = cost(used.prices, record.usage)
        await gateway.capture(record)
        return answer

    return complete


def load_samples(suite: Suite, workspace: Path, store: Store) -> list[Sample]:
    """The suite's dataset: a file in the workspace, or a function's captured trajectories."""
    dataset = suite.config.dataset
    if dataset.file is not None:
        samples = datasets.load_file(workspace / dataset.file)
    else:
        assert dataset.function is not None
        samples = datasets.from_store(
            store, dataset.function,
            since=parse_timestamp(dataset.since) if dataset.since else None,
            until=parse_timestamp(dataset.until) if dataset.until else None,
            tags=dataset.tags or None, metric=dataset.metric, value=dataset.value,
            limit=dataset.limit,
        )
    if dataset.split is not None:
        samples = datasets.split(samples, dataset.fractions, seed=dataset.seed)[dataset.split]
    elif dataset.limit is not None:
        samples = samples[: dataset.limit]
    if not samples:
        raise EvalError(f"{suite.shown}: the dataset has no samples")
    return samples


def build_graders(suite: Suite, complete: Complete) -> dict[str, Grader]:
    return {name: grader_from_config(name, table.spec(), complete=complete)
            for name, table in suite.config.graders.items()}


async def run_suite(workspace: Workspace, config: Config, store: Store, suite: Suite, *,
                    resume: str | None = None, variants: list[str] | None = None,
                    epochs: int | None = None, concurrency: int | None = None,
                    use_cache: bool = True, progress: Callable[[int, int], None] | None = None,
                    ) -> RunOutcome:
    """Run `suite` in-process through a `Gateway` over `store`. `progress(advance, total)`."""
    samples = await asyncio.to_thread(load_samples, suite, workspace.path, store)
    gateway = Gateway(config, store, spool_dir=workspace.path / "spool",
                      memory_dir=workspace.path / "memory")
    runs = Runs(store.engine)
    if resume is not None:
        stored = await asyncio.to_thread(runs.get, resume)
        variants = variants or stored.config.get("variants")
        epochs = epochs or stored.config.get("epochs")
    cache = CallCache(workspace.path / CACHE_FILE) if use_cache else None
    holder: list[str] = [resume or ""]
    graders = build_graders(suite, gateway_complete(gateway, lambda: holder[0]))
    runner = Runner(gateway, runs, suite, samples, graders, cache=cache, variants=variants,
                    epochs=epochs, concurrency=concurrency)
    total = len(samples) * len(runner.targets) * runner.epochs
    await gateway.start()
    try:
        def advance(n: int) -> None:
            holder[0] = runner.run_id
            if progress is not None:
                progress(n, total)

        return await runner.run(resume, advance)
    finally:
        await gateway.close()
        if cache is not None:
            cache.close()
