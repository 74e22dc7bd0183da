"""Running a suite: every variant on every sample, `epochs` times, graded and stored.

Calls go through the one call path of a running gateway passed in (`Gateway.call`: the
variant pinned, retries, timeouts and breakers, hooks, cost, capture), not through HTTP: the
same code that serves production traffic, without a socket per call. Memory context and the
semantic cache are left out on purpose: an evaluation measures the variant on the sample as
given, and a cached answer from production would measure nothing. Each call is a trajectory
tagged `eval_run`, `eval_suite`, `eval_sample` (and `eval_role=canary` for a canary's): the
store's `EVAL_TAGS`, which keep evaluation calls out of training data.

Calls are bounded per provider (`concurrency` workers each); results are committed in batches
as they finish, so `resume` skips every (sample, variant, epoch) already stored. Model answers
are cached on disk (see cache.py): a re-run calls no model again, unless the provider's settings
changed or the answer is older than `[evals] cache_ttl`. The variants named `fresh` (a gate's
candidate) are always called; their answers still refresh the cache. A result answered from the
cache keeps the answer's age (`output["cache_age_s"]`), so a gate can say how old its baseline is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veteran.evals import datasets
from veteran.evals.cache import CACHE_FILE, CallCache, call_key
from veteran.evals.errors import EvalError, Skip
from veteran.evals.graders import grader_from_config
from veteran.evals.runs import Key, Result, Runs
from veteran.evals.suite import Suite, Target
from veteran.evals.types import Complete, Grader, Output, Sample, Score
from veteran.gateway import (
    UPSTREAM_FAILURES,
    Answer,
    CachedAnswer,
    Call,
    Gateway,
    Route,
)
from veteran.models.registry import code_version
from veteran.policies import map_request
from veteran.store import EVAL_ROLE, EVAL_RUN, EVAL_SAMPLE, EVAL_SUITE, Store
from veteran.types import now, parse_timestamp
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
    # what the dataset left out of a function's trajectories (evaluation calls, trained rows)
    left_out: datasets.LeftOut = datasets.LeftOut()


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
                 epochs: int | None = None, cache_ttl: float | None = None,
                 fresh: Collection[str] = (), role: str | None = None) -> None:
        self.gateway = gateway
        self.role = role  # why the suite runs, when not for its own sake: "canary"
        self.runs = runs
        self.suite = suite
        self.samples = samples
        self.graders = graders
        self.cache = cache
        self.cache_ttl = cache_ttl  # seconds; None: answers of any age
        self.variants = variants or list(suite.config.variants)
        unknown = [v for v in fresh if v not in self.variants]
        if unknown:
            raise EvalError(f"{suite.shown}: cannot call {', '.join(unknown)} fresh: not among "
                            f"the variants run ({', '.join(self.variants)})")
        self.fresh = frozenset(fresh)
        self.concurrency = concurrency or suite.config.concurrency
        self.epochs = epochs or suite.config.epochs
        self.targets = [Target.parse(v) for v in self.variants]
        self.routes = {t.name: gateway.router.resolve(t.model, t.variant) for t in self.targets}
        self._pending: list[Result] = []
        self._flush_lock = threading.Lock()
        self.run_id = ""

    def run_config(self) -> dict[str, Any]:
        """What is stored with the run (and what `resume` runs again)."""
        version, commit = code_version()
        return {"suite": self.suite.config.model_dump(mode="json"), "variants": self.variants,
                "epochs": self.epochs, "concurrency": self.concurrency,
                "samples": len(self.samples),
                "models": {name: f"{r.provider.name}/{r.model}" for name, r in self.routes.items()},
                "veteran": {"version": version, "commit": commit}}

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
        route = task.route
        tags = {EVAL_RUN: self.run_id, EVAL_SUITE: self.suite.name[:512],
                EVAL_SAMPLE: task.sample.id[:512]}
        if self.role is not None:
            tags[EVAL_ROLE] = self.role
        call = self.gateway.prepare(self.request_body(task.sample, task.target), route=route,
                                    tags=tags, recall=False)
        cache = None if self.cache is None else _EvalCache(
            self.cache, task.epoch, max_age=self.cache_ttl,
            read=task.target.name not in self.fresh)
        age: float | None = None
        try:
            answer = await self.gateway.call(call, cache=cache)
        except UPSTREAM_FAILURES as exc:
            output = Output(text="", trajectory_id=call.record.id, error=exc.message)
            latency, call_cost, cached = call.record.latency_ms or 0.0, None, False
        else:
            output = _output(answer.response, call.record.id)
            latency, call_cost, cached = answer.latency_ms, answer.cost, answer.cached
            if cached and cache is not None and cache.hit_at is not None:
                age = max(0.0, now() - cache.hit_at)
        scores = await self._grade(task.sample, output)
        # Stored as the trajectory is (the company's rules, storage redaction): the sealed
        # answer, and the sample's texts and the graders' reasons hidden the same way.
        hide = functools.partial(self.gateway.policy.stored_text, call)
        if call.record.response is not None and output.error is None:
            output = _output(call.record.response, call.record.id)
        sample = task.sample
        stored: dict[str, Any] = {"text": output.text, "tool_calls": output.tool_calls,
                                  "error": _sealed(output.error, hide),
                                  "metadata": _sealed(sample.metadata, hide),
                                  # what the report's failures table shows next to the output
                                  "input": map_request({"messages": sample.messages},
                                                       hide)["messages"],
                                  "reference": _sealed(sample.reference, hide)}
        if age is not None:
            stored["cache_age_s"] = age
        return Result(
            sample_id=task.sample.id, variant=task.target.name, epoch=task.epoch,
            output=stored,
            scores=_sealed(scores, hide), latency_ms=latency, cost=call_cost, cached=cached,
            trajectory_id=call.record.id,
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


def _sealed(value: Any, hide: Callable[[str], str]) -> Any:
    """A JSON value with `hide` applied to each of its strings."""
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, list):
        return [_sealed(v, hide) for v in value]
    if isinstance(value, dict):
        return {k: _sealed(v, hide) for k, v in value.items()}
    return value


def _output(answer: dict[str, Any], trajectory_id: str) -> Output:
    choices = answer.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return Output(text=message.get("content") or "", tool_calls=message.get("tool_calls") or [],
                  completion=answer, trajectory_id=trajectory_id)


class _EvalCache:
    """The eval call cache as the call path's `AnswerCache`, for one call: keyed on the primary
    route's provider (its name and effective settings), model and upstream body (fewshot
    settings included: their examples are added later, by the caller) and the epoch. Answers
    older than `max_age` seconds are not used; with `read` False none is (the answer is still
    kept). `hit_at`: when the answer given was first made."""

    def __init__(self, cache: CallCache, epoch: int, *, max_age: float | None = None,
                 read: bool = True) -> None:
        self.cache = cache
        self.epoch = epoch
        self.max_age = max_age
        self.read = read
        self.hit_at: float | None = None

    def key(self, call: Call) -> str:
        route = call.route
        upstream = route.upstream_body(call.body)
        if route.fewshot is not None:
            upstream = {**upstream, "x-veteran-fewshot": route.fewshot.model_dump()}
        provider = route.provider
        return call_key(provider.name, provider.settings.fingerprint(route.model), route.model,
                        upstream, self.epoch)

    def get(self, call: Call) -> CachedAnswer | None:
        if not self.read:
            return None
        key = self.key(call)
        hit = self.cache.get(key, max_age=self.max_age)
        if hit is None:
            return None
        self.hit_at = hit.created_at
        return CachedAnswer(hit.response, hit.cost, hit.latency_ms or 0.0, {"eval_cache": key})

    def put(self, call: Call, answer: Answer) -> None:
        self.cache.put(self.key(call), answer.response, answer.cost, answer.latency_ms)


def judge_complete(gateway: Gateway, run_id: Callable[[], str]) -> Complete:
    """A model call for LLM judges through the one call path (judge calls are trajectories,
    tagged `eval_run` and `eval_role=judge`)."""

    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        return await gateway.complete(body, tags={EVAL_RUN: run_id(), EVAL_ROLE: "judge"})

    return complete


def load_samples(suite: Suite, workspace: Path, store: Store) -> list[Sample]:
    """The suite's dataset: a file in the workspace, or a function's captured trajectories."""
    return load_dataset(suite, workspace, store)[0]


def load_dataset(suite: Suite, workspace: Path, store: Store
                 ) -> tuple[list[Sample], datasets.LeftOut]:
    """The suite's samples, and what a dataset of a function's trajectories left out: its
    evaluation calls, and what the function's models were trained on (their manifests)."""
    dataset = suite.config.dataset
    left_out = datasets.LeftOut()
    if dataset.file is not None:
        samples = datasets.load_file(workspace / dataset.file)
    else:
        assert dataset.function is not None
        samples, left_out = datasets.samples_from_store(
            store, dataset.function,
            since=parse_timestamp(dataset.since) if dataset.since else None,
            until=parse_timestamp(dataset.until) if dataset.until else None,
            tags=dataset.tags or None, metric=dataset.metric, value=dataset.value,
            limit=dataset.limit, trained=datasets.trained_rows(workspace, dataset.function),
        )
    if dataset.split is not None:
        samples = datasets.split(samples, dataset.fractions, seed=dataset.seed)[dataset.split]
    elif dataset.limit is not None:
        samples = samples[: dataset.limit]
    if not samples:
        why = "; ".join(left_out.lines())
        raise EvalError(f"{suite.shown}: the dataset has no samples" + (f" ({why})" if why
                                                                         else ""))
    return samples, left_out


def build_graders(suite: Suite, complete: Complete) -> dict[str, Grader]:
    return {name: grader_from_config(name, table.spec(), complete=complete)
            for name, table in suite.config.graders.items()}


async def run_suite(gateway: Gateway, workspace: Workspace, suite: Suite, *,
                    resume: str | None = None, variants: list[str] | None = None,
                    epochs: int | None = None, concurrency: int | None = None,
                    use_cache: bool = True, fresh: Collection[str] = (),
                    progress: Callable[[int, int], None] | None = None, role: str | None = None,
                    ) -> RunOutcome:
    """Run `suite` through the running `gateway` (its store keeps the run).
    `fresh`: variants called whatever the eval call cache holds (a gate's candidate); the
    cache's age limit is the gateway config's `[evals] cache_ttl`. `progress(advance, total)`.
    `role` ("canary") is tagged `eval_role` on every call."""
    store = gateway.store
    samples, left_out = await asyncio.to_thread(load_dataset, suite, workspace.path, store)
    runs = Runs(store.engine)
    if resume is not None:
        stored = await asyncio.to_thread(runs.get, resume)
        variants = variants or stored.config.get("variants")
        epochs = epochs or stored.config.get("epochs")
    ttl = gateway.config.evals.cache_ttl_seconds
    cache = None
    if use_cache:
        cache = CallCache(workspace.path / CACHE_FILE, codec=store.codec)
        await asyncio.to_thread(cache.prune, ttl)  # a disposable file need not keep what expired
    holder: list[str] = [resume or ""]
    graders = build_graders(suite, judge_complete(gateway, lambda: holder[0]))
    try:
        runner = Runner(gateway, runs, suite, samples, graders, cache=cache, variants=variants,
                        epochs=epochs, concurrency=concurrency, cache_ttl=ttl, fresh=fresh,
                        role=role)
        total = len(samples) * len(runner.targets) * runner.epochs

        def advance(n: int) -> None:
            holder[0] = runner.run_id
            if progress is not None:
                progress(n, total)

        outcome = await runner.run(resume, advance)
        return dataclasses.replace(outcome, left_out=left_out)
    finally:
        if cache is not None:
            cache.close()
