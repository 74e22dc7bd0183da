"""The words of training: a **recipe** turns a curated dataset into an owned **model** (a folder
in the workspace's registry), reporting progress as it goes and resuming from its checkpoints.

A model folder (`WORKSPACE/models/MODEL_ID/`) holds `veteran-model.json` (written by the
registry: kind, recipe, base model, lineage, metrics, scores) and the recipe's artifacts:

- kind "causal-lm": `adapter/` (a peft LoRA adapter and its tokenizer) over `base_model`, or
  `weights/` (a whole Hugging Face model folder);
- kind "classifier": an embedding model (`embedder`, e.g. "minilm") plus a trained head;
- kind "fewshot": `examples.jsonl` and their embeddings, chosen per request by similarity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from veteran.datasets.types import Example, Kind
from veteran.envs.rewards import RewardFunc as RewardFunc  # re-exported: a word of training
from veteran.models import ModelKind as ModelKind  # re-exported: a word of training

# What a recipe's dataset must hold (see `Recipe.needs`): one of the curation kinds.
Needs = Kind


@dataclass(frozen=True, slots=True)
class Progress:
    step: int
    total: int  # planned steps (0 when unknown)
    metrics: dict[str, float] = field(default_factory=dict)  # loss, reward, ...


@dataclass
class TrainJob:
    function: str
    recipe: str
    train: list[Example]
    eval: list[Example]  # held out (by episode) for the recipe's own metrics; may be empty
    output_dir: Path  # the model folder being built: artifacts go here
    checkpoint_dir: Path  # the recipe's checkpoints; kept until the model is registered
    params: dict[str, Any] = field(default_factory=dict)  # recipe parameters (`--param K=V`)
    seed: int = 0
    base_model: str | None = None  # a local model name or a Hugging Face folder; None: default
    resume: bool = False  # continue from the latest checkpoint in checkpoint_dir
    reward_funcs: list[RewardFunc] = field(default_factory=list)  # for `grpo`: the env's rewards
    progress: Callable[[Progress], None] = lambda _: None


@dataclass
class TrainResult:
    kind: ModelKind
    base_model: str | None  # what the artifacts build on (None for a classifier or fewshot)
    metrics: dict[str, float]  # final figures: train_loss, eval_loss, reward, accuracy, ...
    history: list[dict[str, float]] = field(default_factory=list)  # per logged step
    params: dict[str, Any] = field(default_factory=dict)  # the parameters actually used
    seconds: float = 0.0  # training wall time


class Recipe(Protocol):
    name: ClassVar[str]
    kind: ClassVar[ModelKind]
    # What the dataset must hold: "sft" (prompt + completion), "preference" (with rejected),
    # "environment" (prompt + reference, rewards from the suite's graders).
    needs: ClassVar[Needs]

    def check(self, job: TrainJob) -> None:
        """Refuse (a `RecipeError`) what `train` would refuse before training: unknown or bad
        parameters, examples it cannot learn from, a missing package or base model. Called
        before the job's folder (`job.output_dir`) exists; cheap, and loads no model."""
        ...

    def train(self, job: TrainJob) -> TrainResult: ...
