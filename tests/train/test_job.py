"""`train_model` end to end with a fake recipe (registered in RECIPES) over the real curation:
staging, the exported dataset in the lineage, progress, resume from a checkpoint, refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
import pytest

from tests.conftest import write_workspace
from veteran.datasets import Filters, read_manifest
from veteran.errors import RecipeError, VeteranError
from veteran.models import Registry
from veteran.store import Store, TrajectoryFilter, new_id
from veteran.train import recipes
from veteran.train.job import TrainingStopped, train_model
from veteran.train.recipes import RECIPES, load_recipe
from veteran.train.types import ModelKind, Progress, TrainJob, TrainResult
from veteran.types import TrajectoryRecord
from veteran.workspace import Workspace

STEPS = 4


class FakeRecipe:
    """Counts STEPS steps, one checkpoint file per step; stops (Ctrl-C) at `stop_at`, refuses
    (a `RecipeError`) at `refuse_at`; its `check` refuses a parameter `bad`."""

    name: ClassVar[str] = "fake"
    kind: ClassVar[ModelKind] = "causal-lm"
    needs: ClassVar[Literal["sft", "preference", "environment"]] = "sft"
    jobs: ClassVar[list[TrainJob]] = []
    stop_at: ClassVar[int | None] = None
    refuse_at: ClassVar[int | None] = None
    ran: ClassVar[list[int]] = []
    checked: ClassVar[list[bool]] = []  # whether the job's folder existed when checked

    def check(self, job: TrainJob) -> None:
        FakeRecipe.checked.append(job.output_dir.exists())
        if "bad" in job.params:
            raise RecipeError("recipe 'fake' has no parameter 'bad'")

    def train(self, job: TrainJob) -> TrainResult:
        FakeRecipe.jobs.append(job)
        mark = job.checkpoint_dir / "step"
        start = int(mark.read_text()) if job.resume else 0
        for step in range(start, STEPS):
            if step == FakeRecipe.stop_at:
                raise KeyboardInterrupt
            if step == FakeRecipe.refuse_at:
                raise RecipeError(f"fake: refused at step {step}")
            FakeRecipe.ran.append(step)
            mark.write_text(str(step + 1))
            job.progress(Progress(step + 1, STEPS, {"loss": 1 / (step + 1)}))
        texts = sorted(e.completion_text for e in job.train)
        (job.output_dir / "weights.txt").write_text("\n".join(texts))
        return TrainResult(kind="causal-lm", base_model=job.base_model or "tiny",
                           metrics={"train_loss": 0.25}, history=[{"step": 4, "loss": 0.25}],
                           params={"lr": 0.1, **job.params})


class FakeEnvRecipe(FakeRecipe):
    name: ClassVar[str] = "fake-env"
    needs: ClassVar[Literal["sft", "preference", "environment"]] = "environment"


class FakeLabelsRecipe(FakeRecipe):
    """Registers a classifier."""

    name: ClassVar[str] = "fake-labels"
    kind: ClassVar[ModelKind] = "classifier"

    def train(self, job: TrainJob) -> TrainResult:
        result = super().train(job)
        result.kind = "classifier"
        return result


@pytest.fixture(autouse=True)
def fake_recipes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(RECIPES, "fake", f"{__name__}:FakeRecipe")
    monkeypatch.setitem(RECIPES, "fake-env", f"{__name__}:FakeEnvRecipe")
    monkeypatch.setitem(RECIPES, "fake-labels", f"{__name__}:FakeLabelsRecipe")
    FakeRecipe.jobs, FakeRecipe.ran, FakeRecipe.stop_at = [], [], None
    FakeRecipe.refuse_at, FakeRecipe.checked = None, []
    yield


CONFIG = """
[providers.m]
kind = "mock"

[functions.triage]
system = "Route the ticket."
[functions.triage.variants.a]
model = "m/a"

[metrics.resolved]
type = "boolean"
"""


def _trajectories(store: Store, n: int, *, at: float, function: str = "triage"
                  ) -> list[TrajectoryRecord]:
    records = [TrajectoryRecord(
        id=new_id(at + i), episode_id=f"ep{i}", created_at=at + i, function=function,
        variant="a",
        request={"model": function, "messages": [
            {"role": "user", "content": f"ticket number {i} about topic {i * 7919 % 104729}"}]},
        response={"choices": [{"message": {"role": "assistant", "content": f"queue {i % 3}"}}]},
    ) for i in range(n)]
    store.insert(records)
    for r in records:
        store.add_feedback(trajectory_id=r.id, metric="resolved", value=True)
    return records


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return write_workspace(tmp_path / "ws", CONFIG)


@pytest.fixture
def store(ws: Workspace, database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    _trajectories(opened, 30, at=time.time() - 1000)
    yield opened
    opened.close()


def _train(ws: Workspace, store: Store, recipe: str = "fake", **kwargs: Any) -> Any:
    kwargs.setdefault("filters", Filters(metric="resolved"))
    kwargs.setdefault("params", {"epochs": 2})
    return train_model(ws, ws.load_config(), store, "triage", recipe, **kwargs)


def test_a_job_curates_trains_and_registers_with_its_lineage(ws: Workspace,
                                                             store: Store) -> None:
    seen: list[Progress] = []
    record = _train(ws, store, seed=3, base_model="tiny-base", progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4] and seen[-1].metrics == {"loss": 0.25}
    job = FakeRecipe.jobs[0]
    assert job.seed == 3 and job.params == {"epochs": 2} and job.base_model == "tiny-base"
    assert not job.resume
    assert len(job.train) + len(job.eval) == 30 and job.train and job.eval
    assert {e.episode_id for e in job.train}.isdisjoint(e.episode_id for e in job.eval)
    assert job.train[0].prompt[0] == {"role": "system", "content": "Route the ticket."}

    folder = ws.path / "models" / record.id
    assert job.output_dir == ws.path / "models" / ".staging" / record.id
    assert (folder / "weights.txt").read_text().startswith("queue 0")
    manifest = read_manifest(folder / "dataset")
    assert manifest.format == "openai-sft" and manifest.seed == 3
    assert manifest.counts["train"] == len(job.train)
    assert manifest.filters["metric"] == "resolved"
    assert manifest.filters["until"] is not None  # pinned when the job was staged

    lineage = Registry(ws.path).get(record.id).lineage
    assert lineage.dataset["content_hash"] == manifest.content_hash
    assert lineage.recipe == "fake" and lineage.params == {"epochs": 2}
    assert lineage.base_model == "tiny-base" and lineage.seed == 3
    assert record.params == {"lr": 0.1, "epochs": 2} and record.kind == "causal-lm"
    assert orjson.loads((folder / "job.json").read_bytes())["filters"]["metric"] == "resolved"


def test_the_same_seed_gives_the_same_data_and_another_seed_another_split(
        ws: Workspace, store: Store) -> None:
    until = time.time()
    a = _train(ws, store, seed=1, filters=Filters(metric="resolved", until=until))
    b = _train(ws, store, seed=1, filters=Filters(metric="resolved", until=until))
    c = _train(ws, store, seed=2, filters=Filters(metric="resolved", until=until))
    assert a.lineage.dataset["content_hash"] == b.lineage.dataset["content_hash"]
    assert a.lineage.dataset["content_hash"] != c.lineage.dataset["content_hash"]


def test_a_stopped_job_resumes_from_its_checkpoint(ws: Workspace, store: Store) -> None:
    FakeRecipe.stop_at = 2
    with pytest.raises(TrainingStopped) as stopped:
        _train(ws, store, seed=5)
    model_id = stopped.value.model_id
    staged = Registry(ws.path).staged(model_id)
    assert (staged.checkpoint_dir / "step").read_text() == "2"
    _trajectories(store, 5, at=time.time() + 1)  # captured since: outside the pinned window
    FakeRecipe.stop_at = None
    record = _train(ws, store, resume=model_id, filters=Filters(), params={}, seed=0)
    assert record.id == model_id
    assert FakeRecipe.ran == [0, 1, 2, 3]  # steps 2 and 3 ran once, after the resume
    resumed = FakeRecipe.jobs[-1]
    assert resumed.resume and resumed.seed == 5 and resumed.params == {"epochs": 2}
    assert len(resumed.train) + len(resumed.eval) == 30
    assert not staged.path.exists() and Registry(ws.path).get(model_id).seed == 5


def test_resume_refuses_when_the_data_changed(ws: Workspace, store: Store) -> None:
    FakeRecipe.stop_at = 1
    with pytest.raises(TrainingStopped) as stopped:
        _train(ws, store)
    model_id = stopped.value.model_id
    trajectory = list(store.export(TrajectoryFilter(function="triage")))[0]
    store.add_feedback(trajectory_id=trajectory.id, metric="resolved", value=False)
    FakeRecipe.stop_at = None
    with pytest.raises(VeteranError, match="changed since its training started"):
        _train(ws, store, resume=model_id)
    assert Registry(ws.path).staged(model_id).path.is_dir()  # kept: nothing was lost
    with pytest.raises(VeteranError, match="resume it with: veteran train triage --recipe fake"):
        _train(ws, store, recipe="fake-env", resume=model_id)


def test_what_a_job_refuses(ws: Workspace, store: Store) -> None:
    with pytest.raises(VeteranError, match="no function 'nope'"):
        train_model(ws, ws.load_config(), store, "nope", "fake", filters=Filters(), params={})
    with pytest.raises(VeteranError, match="unknown recipe 'nope'; recipes: .*sft-lora"):
        _train(ws, store, recipe="nope")
    with pytest.raises(VeteranError, match="--suite SUITE"):
        _train(ws, store, recipe="fake-env")
    with pytest.raises(VeteranError, match="no unfinished training"):
        _train(ws, store, resume="triage-fake-000000")
    assert not (ws.path / "models" / ".staging").exists() or not any(
        (ws.path / "models" / ".staging").iterdir())


def _staging(ws: Workspace) -> list[str]:
    folder = ws.path / "models" / ".staging"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_recipe_checks_the_job_before_anything_is_written(ws: Workspace,
                                                            store: Store) -> None:
    with pytest.raises(RecipeError, match="no parameter 'bad'"):
        _train(ws, store, params={"bad": 1})
    assert FakeRecipe.checked == [False] and not FakeRecipe.jobs  # checked, never trained
    assert _staging(ws) == []
    record = _train(ws, store)
    assert FakeRecipe.checked == [False, False] and record.id not in _staging(ws)


def test_a_job_refused_before_its_first_checkpoint_leaves_nothing_to_resume(
        ws: Workspace, store: Store) -> None:
    FakeRecipe.refuse_at = 0
    with pytest.raises(RecipeError, match="refused at step 0"):
        _train(ws, store)
    assert _staging(ws) == [] and Registry(ws.path).list_staged() == []
    # One refused after a checkpoint keeps it, and resumes from it once the cause is gone.
    FakeRecipe.refuse_at = 2
    with pytest.raises(RecipeError, match="refused at step 2"):
        _train(ws, store)
    [staged] = Registry(ws.path).list_staged()
    FakeRecipe.refuse_at = None
    record = _train(ws, store, resume=staged.id)
    assert record.id == staged.id and FakeRecipe.ran == [0, 1, 2, 3]  # 2 and 3 resumed


def test_a_job_stopped_before_its_first_checkpoint_resumes_from_the_start(
        ws: Workspace, store: Store) -> None:
    FakeRecipe.stop_at = 0
    with pytest.raises(TrainingStopped) as stopped:
        _train(ws, store)
    FakeRecipe.stop_at = None
    record = _train(ws, store, resume=stopped.value.model_id)
    assert not FakeRecipe.jobs[-1].resume  # nothing to continue from: it starts over
    assert record.id == stopped.value.model_id and FakeRecipe.ran == [0, 1, 2, 3]


SUITE = """
variants = ["triage:a"]
[dataset]
file = "evals/tickets.jsonl"
[graders.label]
type = "normalized"
"""


def test_an_environment_recipe_is_rewarded_by_the_suite_graders_on_its_own_rows(
        ws: Workspace, store: Store) -> None:
    from veteran.train.recipes.grpo import _decoded, rows

    (ws.path / "evals").mkdir()
    (ws.path / "evals" / "tickets.toml").write_text(SUITE)
    # The suite's own dataset: none of the job's tasks is in it.
    (ws.path / "evals" / "tickets.jsonl").write_text('{"input": "other", "target": "x"}\n')
    record = _train(ws, store, recipe="fake-env", suite="tickets")
    job = FakeRecipe.jobs[0]
    assert len(job.reward_funcs) == 1 and job.reward_funcs[0].__name__ == "label"
    # Called as TRL's GRPOTrainer calls it: the dataset's columns beside the completions.
    table = rows(job.train[:4])
    reward = _decoded(job.reward_funcs[0])
    columns = {"task_id": [r["task_id"] for r in table],
               "reference": [r["reference"] for r in table]}
    prompts = [r["prompt"] for r in table]
    right = [[{"role": "assistant", "content": ex.reference}] for ex in job.train[:4]]
    wrong = [[{"role": "assistant", "content": "no idea"}] for _ in job.train[:4]]
    assert reward(prompts, right, **columns) == [1.0] * 4
    assert reward(prompts, wrong, **columns) == [0.0] * 4
    assert record.lineage.suite == "tickets"
    assert record.lineage.dataset["format"] == "openai-rft"


def test_a_registered_causal_lm_is_a_base_given_by_its_id(ws: Workspace, store: Store) -> None:
    first = _train(ws, store)
    second = _train(ws, store, base_model=first.id)
    registry = Registry(ws.path)
    assert FakeRecipe.jobs[-1].base_model == str(registry.path(first.id))  # its folder
    assert second.lineage.base_model == first.id
    # Anything else goes to the recipe as given.
    _train(ws, store, base_model="smollm2-135m-instruct")
    assert FakeRecipe.jobs[-1].base_model == "smollm2-135m-instruct"

    classifier = _train(ws, store, recipe="fake-labels")
    with pytest.raises(VeteranError, match="is a classifier model; only a causal LM"):
        _train(ws, store, base_model=classifier.id)


def test_recipes_are_loaded_by_name() -> None:
    assert set(recipes.RECIPES) >= {"fewshot", "classifier", "sft-lora", "dpo", "grpo"}
    assert isinstance(load_recipe("fake"), FakeRecipe)
    with pytest.raises(VeteranError,
                       match="recipes: classifier, dpo, fake, fake-env, fake-labels, fewshot"):
        load_recipe("nope")


def test_the_public_names_of_train() -> None:
    import veteran.train as train

    assert train.__all__ == sorted(train.__all__)
    for name in train.__all__:
        assert getattr(train, name) is not None, name
    with pytest.raises(AttributeError):
        train.nope  # noqa: B018
