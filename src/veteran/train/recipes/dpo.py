"""`dpo`: Direct Preference Optimization of a LoRA adapter with TRL's `DPOTrainer`.

Rows are conversational prompt/chosen/rejected triples (the answer kept, and a worse answer to
the same prompt). The reference policy is the base itself, with the adapter switched off (TRL's
way with peft), so no second copy of the model is loaded.
"""

from __future__ import annotations

from typing import Any, ClassVar

from veteran.datasets.types import Example
from veteran.train.recipes import _hf
from veteran.train.types import ModelKind, Needs, TrainJob, TrainResult

PARAMS: dict[str, _hf.Param] = {
    **_hf.COMMON,
    "learning_rate": _hf.Param(5e-5, "peak AdamW learning rate", low=1e-9, high=1.0),
    "beta": _hf.Param(0.1, "how far from the reference the policy may move (DPO's beta)",
                      low=1e-6),
    "max_length": _hf.Param(256, "tokens per prompt + answer, truncated beyond", low=8),
}


def rows(examples: list[Example]) -> list[dict[str, Any]]:
    missing = [ex.id for ex in examples if ex.rejected is None]
    if missing:
        raise _hf.RecipeError(f"recipe 'dpo' needs preference pairs; {len(missing)} example(s) "
                              f"have no rejected answer (first: {missing[0]})")
    return [{"prompt": _hf.conversation(ex.prompt), "chosen": [_hf.message(ex.completion)],
             "rejected": [_hf.message(ex.rejected or {})]} for ex in examples]


class DpoRecipe:
    name: ClassVar[str] = "dpo"
    kind: ClassVar[ModelKind] = "causal-lm"
    needs: ClassVar[Needs] = "preference"

    def check(self, job: TrainJob) -> None:
        _hf.resolve(self.name, job.params, PARAMS)
        rows(job.train)
        rows(job.eval)
        _hf.check(job, PARAMS)

    def train(self, job: TrainJob) -> TrainResult:
        p = _hf.resolve(self.name, job.params, PARAMS)
        train, evaluation = rows(job.train), rows(job.eval)
        base = _hf.start(job)
        trl = _hf.require("trl")
        config = trl.DPOConfig(**_hf.arguments(job, p, base), max_length=p["max_length"],
                               beta=p["beta"])
        with _hf.quiet():
            trainer = trl.DPOTrainer(
                model=base.model, args=config, processing_class=base.tokenizer,
                train_dataset=_hf.dataset(train),
                eval_dataset=_hf.dataset(evaluation) if evaluation else None,
                peft_config=_hf.lora(p))
        return _hf.fit(job, trainer, base, p, lambda history: {
            **{f"final_{k}": v for k, v in _hf.last(history, "loss").items()},
            **_hf.last(history, "rewards/margins"), **_hf.last(history, "rewards/accuracies")})
