"""`grpo`: Group Relative Policy Optimization of a LoRA adapter with TRL's `GRPOTrainer`.

Each row is a task of the function's environment: the prompt, the `reference` its graders
compare against, and the `task_id`. For every prompt the model samples `num_generations`
completions; `job.reward_funcs` (the environment's graders, in TRL's shape
`(prompts, completions, **columns) -> list[float]`) score them, and the policy moves toward the
completions that beat their group's mean. With `beta` > 0 a KL term holds it near the base (the
adapter switched off), with no second copy of the model.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from veteran.datasets.types import Example
from veteran.train.recipes import _hf
from veteran.train.types import ModelKind, Needs, RewardFunc, TrainJob, TrainResult

PARAMS: dict[str, _hf.Param] = {
    **{key: param for key, param in _hf.COMMON.items() if key != "max_length"},
    "learning_rate": _hf.Param(5e-5, "peak AdamW learning rate", low=1e-9, high=1.0),
    "logging_steps": _hf.Param(1, "steps between logged (and reported) metrics", low=1),
    "num_generations": _hf.Param(4, "completions sampled per prompt (the group)", low=2),
    "max_completion_length": _hf.Param(64, "tokens per sampled completion", low=1),
    "temperature": _hf.Param(1.0, "sampling temperature", low=1e-3, high=10.0),
    "beta": _hf.Param(0.0, "weight of the KL penalty toward the base (0: none)", low=0.0),
}


def rows(examples: list[Example]) -> list[dict[str, Any]]:
    # The reference travels as JSON text, one Arrow type whatever its shape; `_decoded` turns it
    # back before a reward function sees it.
    return [{"prompt": _hf.conversation(ex.prompt), "task_id": ex.id,
             "reference": json.dumps(ex.reference, ensure_ascii=False)} for ex in examples]


def _decoded(func: RewardFunc) -> RewardFunc:
    """`func` called with the references as they were in the examples; sync or async alike."""

    def columns(kwargs: dict[str, Any]) -> dict[str, Any]:
        if "reference" in kwargs:
            kwargs["reference"] = [json.loads(text) for text in kwargs["reference"]]
        return kwargs

    # An object whose `__call__` is async counts as async too (as TRL reads it).
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__):
        coroutine = cast(Callable[..., Awaitable[list[float]]], func)

        async def reward_async(*args: Any, **kwargs: Any) -> list[float]:
            return await coroutine(*args, **columns(kwargs))
        wrapper: Any = reward_async
    else:
        def reward(*args: Any, **kwargs: Any) -> list[float]:
            return func(*args, **columns(kwargs))
        wrapper = reward
    # TRL names each reward's logged metrics (`rewards/NAME/mean`) after the function.
    functools.update_wrapper(wrapper, func, assigned=("__name__", "__qualname__", "__doc__"))
    if not hasattr(func, "__name__"):
        wrapper.__name__ = type(func).__name__
    return cast(RewardFunc, wrapper)


class GrpoRecipe:
    name: ClassVar[str] = "grpo"
    kind: ClassVar[ModelKind] = "causal-lm"
    needs: ClassVar[Needs] = "environment"

    def check(self, job: TrainJob) -> None:
        self._checked(job)

    def _checked(self, job: TrainJob) -> dict[str, Any]:
        p = _hf.resolve(self.name, job.params, PARAMS)
        if not job.reward_funcs:
            raise _hf.RecipeError("recipe 'grpo' needs reward functions (the environment's "
                                  "graders); this job has none")
        if (p["batch_size"] * p["grad_accum"]) % p["num_generations"]:
            raise _hf.RecipeError(
                f"recipe 'grpo': batch_size × grad_accum ({p['batch_size']} × {p['grad_accum']})"
                f" must be a multiple of num_generations ({p['num_generations']})")
        _hf.check(job, PARAMS)
        return p

    def train(self, job: TrainJob) -> TrainResult:
        p = self._checked(job)
        base = _hf.start(job)
        trl = _hf.require("trl")
        arguments = _hf.arguments(job, p, base)
        # Evaluation samples whole groups too.
        groups = max(1, p["batch_size"] // p["num_generations"])
        arguments["per_device_eval_batch_size"] = groups * p["num_generations"]
        config = trl.GRPOConfig(
            **arguments, num_generations=p["num_generations"],
            max_completion_length=p["max_completion_length"], temperature=p["temperature"],
            beta=p["beta"])
        with _hf.quiet():
            trainer = trl.GRPOTrainer(
                model=base.model, args=config, processing_class=base.tokenizer,
                reward_funcs=[_decoded(func) for func in job.reward_funcs],
                train_dataset=_hf.dataset(rows(job.train)),
                eval_dataset=_hf.dataset(rows(job.eval)) if job.eval else None,
                peft_config=_hf.lora(p))
        return _hf.fit(job, trainer, base, p, lambda history: {
            **_hf.last(history, "reward"), **_hf.last(history, "reward_std")})
