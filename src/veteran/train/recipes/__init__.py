"""The recipes: each turns a curated dataset into a registered model (see `veteran.train.types`).

Recipes are imported only when chosen: most need the `train` extra (TRL, peft), which the
gateway never does.
"""

from __future__ import annotations

import importlib

from veteran.errors import VeteranError
from veteran.train.types import Recipe

# name -> "module:Class"
RECIPES: dict[str, str] = {
    "fewshot": "veteran.train.recipes.fewshot:FewshotRecipe",
    "classifier": "veteran.train.recipes.classifier:ClassifierRecipe",
    "sft-lora": "veteran.train.recipes.sft_lora:SftLoraRecipe",
    "dpo": "veteran.train.recipes.dpo:DpoRecipe",
    "grpo": "veteran.train.recipes.grpo:GrpoRecipe",
}


def load_recipe(name: str) -> Recipe:
    """An instance of the recipe called `name`; an error listing the recipes when unknown."""
    target = RECIPES.get(name)
    if target is None:
        raise VeteranError(f"unknown recipe {name!r}; recipes: {', '.join(sorted(RECIPES))}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    recipe: Recipe = cls()
    return recipe
