"""Training owned models: recipes turn a function's curated trajectories into a model, the
registry (`veteran.models`, below this room) keeps it with its lineage, and promotion makes it a
variant after its eval gate (see docs/training.md).

Errors: `PromotionRefused` (a `VeteranError`) when a model fails its gate; an unknown model is
`veteran.errors.NotFound`; everything else a user can fix is a `VeteranError` saying what.

Names other than the words of `types` are imported on first use: every recipe imports
`veteran.train.types`, and that must not import the job and promotion modules, which import
the evals, datasets and envs rooms.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from veteran.train.types import ModelKind, Progress, Recipe, RewardFunc, TrainJob, TrainResult

if TYPE_CHECKING:
    from veteran.train.job import JobSpec, TrainingStopped, train_model
    from veteran.train.promote import Promotion, PromotionRefused, Rollback, promote, rollback
    from veteran.train.recipes import RECIPES, load_recipe

_LAZY = {
    "JobSpec": "job", "TrainingStopped": "job", "train_model": "job",
    "Promotion": "promote", "PromotionRefused": "promote", "Rollback": "promote",
    "promote": "promote", "rollback": "promote",
    "RECIPES": "recipes", "load_recipe": "recipes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "JobSpec",
    "ModelKind",
    "Progress",
    "Promotion",
    "PromotionRefused",
    "RECIPES",
    "Recipe",
    "RewardFunc",
    "Rollback",
    "TrainJob",
    "TrainResult",
    "TrainingStopped",
    "load_recipe",
    "promote",
    "rollback",
    "train_model",
]
