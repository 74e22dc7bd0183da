"""`train_model`: curate a function's trajectories, run a recipe on them, register the model.

1. The function and recipe are checked, and the dataset the recipe `needs` is curated from the
   store (`veteran.datasets.curate`, with the filters, split, seed and dedupe threshold given).
2. A staging folder is made (`models/.staging/MODEL_ID/`) holding `job.json` (everything needed
   to run the job again) and the curated data exported in the open format of its kind
   (`dataset/`, with `manifest.json`: its content hash goes into the model's lineage).
3. The recipe trains from the "train" split (the "test" split is its held-out data), writing
   its artifacts into the staging folder and its checkpoints into `checkpoints/`.
4. The registry writes the record and moves the folder into `models/MODEL_ID/`.

What the recipe would refuse (its parameters, the examples' shape, a missing package or base
model: `Recipe.check`) is refused before step 2, so a refused job leaves nothing behind; a
refusal from the recipe's training itself removes the staging folder too, unless the recipe
had saved a checkpoint.

An interrupted job (Ctrl-C, a crash) leaves its staging folder; `resume=MODEL_ID` reads its
`job.json`, curates again and refuses unless the data is byte for byte what it was (the
manifest's content hash), then lets the recipe continue from its latest checkpoint (or start
over when it had saved none). A job with no `until` filter is pinned at the moment it was
staged, so trajectories captured since do not change what it trains on. `veteran models
remove MODEL_ID` deletes an unfinished job that will not be resumed.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from veteran.config import Config
from veteran.datasets import (
    Curated,
    DataError,
    Filters,
    curate,
    export,
    manifest_to_json,
    read_manifest,
)
from veteran.errors import TrainingStopped as TrainingStopped  # defined with the whole tree
from veteran.errors import VeteranError
from veteran.models import Lineage, ModelRecord, Registry, StagedModel
from veteran.store import Store
from veteran.train.recipes import load_recipe
from veteran.train.types import Progress, Recipe, RewardFunc, TrainJob, TrainResult
from veteran.workspace import Workspace

JOB_VERSION = 1
# The open format each kind of dataset is exported in, next to the model.
EXPORT_FORMATS = {"sft": "openai-sft", "preference": "openai-dpo", "environment": "openai-rft"}


@dataclass(frozen=True)
class JobSpec:
    """`job.json`: what was asked for, enough to run the job again."""

    function: str
    recipe: str
    filters: dict[str, Any]  # `Filters.to_json()`
    params: dict[str, Any]
    seed: int
    base_model: str | None
    suite: str | None  # the rewards' suite (environment recipes)
    split: dict[str, float] | None
    dedupe: float | None
    version: int = JOB_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        version = data.get("version", 1)
        if not isinstance(version, int) or version > JOB_VERSION:
            raise VeteranError(f"job.json version {version!r} is newer than this veteran "
                               f"reads ({JOB_VERSION}); upgrade veteran")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def train_model(workspace: Workspace, config: Config, store: Store, function: str, recipe: str,
                *, filters: Filters, params: dict[str, Any], seed: int = 0,
                base_model: str | None = None, suite: str | None = None,
                split: Mapping[str, float] | None = None, dedupe: float | None = 0.9,
                resume: str | None = None,
                progress: Callable[[Progress], None] | None = None) -> ModelRecord:
    """Train `recipe` on `function`'s curated trajectories and register the model (see the
    module docstring); `resume=MODEL_ID` continues an interrupted job (its saved options win)."""
    registry = Registry(workspace.path)
    if resume is not None:
        staged = registry.staged(resume)
        spec = JobSpec.from_json(staged.job)
        if (spec.function, spec.recipe) != (function, recipe):
            raise VeteranError(f"{resume} is a {spec.recipe!r} job for {spec.function!r}; "
                               f"resume it with: veteran train {spec.function} --recipe "
                               f"{spec.recipe} --resume {resume}")
    else:
        staged = None
        spec = JobSpec(function, recipe, _pinned(filters).to_json(), dict(params), seed,
                       base_model, suite, dict(split) if split is not None else None, dedupe)
    fconfig = config.functions.get(spec.function)
    if fconfig is None:
        raise VeteranError(f"no function {spec.function!r} in veteran.toml "
                           f"(functions: {', '.join(config.functions) or 'none'})")
    chosen = load_recipe(spec.recipe)
    if chosen.needs == "environment" and spec.suite is None:
        if fconfig.gate is None:
            raise VeteranError(f"recipe {spec.recipe!r} is rewarded by a suite's graders: give "
                               f"--suite SUITE (or set [functions.{spec.function}.gate] suite)")
        spec = dataclasses.replace(spec, suite=fconfig.gate.suite)
    curated = curate(store, config, spec.function, Filters.from_json(spec.filters),
                     kind=chosen.needs, split=spec.split, seed=spec.seed,
                     dedupe=spec.dedupe)
    train = curated.splits.get("train", [])
    if not train:
        raise VeteranError(f"no training examples for {spec.function!r} with these filters "
                           f"(curated: {curated.counts})")
    fmt = EXPORT_FORMATS[chosen.needs]
    reward_funcs: list[RewardFunc] = []
    if chosen.needs == "environment":
        from veteran.envs import reward_funcs_for_suite

        assert spec.suite is not None
        # Scored against each row's own curated reference, found by its task_id.
        reward_funcs = reward_funcs_for_suite(workspace.path, config, spec.suite,
                                              function=spec.function,
                                              examples=[*train, *curated.splits.get("test", [])])
    target = staged or registry.plan(spec.function, spec.recipe, spec.to_json())
    job = TrainJob(function=spec.function, recipe=spec.recipe, train=train,
                   eval=curated.splits.get("test", []), output_dir=target.path,
                   checkpoint_dir=target.checkpoint_dir, params=dict(spec.params),
                   seed=spec.seed, base_model=_base(registry, spec.base_model),
                   # A job stopped before its first checkpoint starts over, on the same data.
                   resume=staged is not None and staged.has_checkpoints(),
                   reward_funcs=reward_funcs, progress=progress or (lambda _: None))
    chosen.check(job)  # what the recipe would refuse, refused before anything is written
    if staged is None:
        staged = registry.make(target)
        try:
            manifest = manifest_to_json(export(curated, fmt, staged.dataset_dir))
        except BaseException:
            registry.discard(staged)
            raise
    else:
        manifest = _same_data(staged, curated, fmt)
    try:
        result = _run(chosen, job)
    except KeyboardInterrupt as exc:
        raise TrainingStopped(staged.id) from exc
    except VeteranError:
        # Refused: a job with nothing saved to continue from would be refused the same way
        # on --resume, so it is not left behind. One with checkpoints is kept to resume.
        if not staged.has_checkpoints():
            registry.discard(staged)
        raise
    # The record keeps the manifest without its trajectory ids (thousands of them): those stay
    # in dataset/manifest.json, where suites read them (`Registry.trained_on`).
    lineage = Lineage.current(dataset={k: v for k, v in manifest.items() if k != "trajectories"},
                              recipe=spec.recipe,
                              params=spec.params, base_model=spec.base_model, seed=spec.seed,
                              suite=spec.suite)
    return registry.register(staged, result, lineage)


def _base(registry: Registry, base_model: str | None) -> str | None:
    """`base_model` for the recipe: a registered model's id becomes its folder (a causal LM
    only: a model is trained on top of it); anything else goes as given."""
    if base_model is None or not registry.has(base_model):
        return base_model
    record = registry.get(base_model)
    if record.kind != "causal-lm":
        raise VeteranError(f"model {base_model!r} is a {record.kind} model; only a causal LM "
                           "(sft-lora, dpo, grpo) can be trained on")
    return str(registry.path(base_model))


def _run(recipe: Recipe, job: TrainJob) -> TrainResult:
    started = time.perf_counter()
    result = recipe.train(job)
    if not result.seconds:
        result.seconds = time.perf_counter() - started
    return result


def _pinned(filters: Filters) -> Filters:
    """`filters` with `until` set to now when open-ended, so a resumed job sees the same data."""
    if filters.until is not None:
        return filters
    return dataclasses.replace(filters, until=time.time())


def _same_data(staged: StagedModel, curated: Curated, fmt: str) -> dict[str, Any]:
    """The staged dataset's manifest, once the data curated again proves identical to it."""
    try:
        saved = manifest_to_json(read_manifest(staged.dataset_dir))
    except DataError as exc:
        raise VeteranError(f"cannot resume {staged.id}: {exc.message}") from None
    check = staged.path / ".dataset-check"
    shutil.rmtree(check, ignore_errors=True)
    try:
        now = export(curated, fmt, check).content_hash
    finally:
        shutil.rmtree(check, ignore_errors=True)
    if now != saved.get("content_hash"):
        raise VeteranError(
            f"the data for {staged.id} changed since its training started (content hash "
            f"{str(saved.get('content_hash'))[:12]} then, {now[:12]} now): resuming would "
            "train on other data; start a new job instead")
    return saved

