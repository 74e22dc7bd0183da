"""`sft-lora`: supervised fine-tuning of a LoRA adapter with TRL's `SFTTrainer`.

Rows are conversational prompt/completion pairs (the function's system prompt, the client's
messages, the assistant answer to learn); the loss covers the completion only. The defaults suit
a 135M model learning short, classification-like answers on the CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar

from veteran.datasets.types import Example
from veteran.train.recipes import _hf
from veteran.train.types import ModelKind, Needs, TrainJob, TrainResult

PARAMS: dict[str, _hf.Param] = {**_hf.COMMON, "epochs": _hf.Param(2.0, "passes over the rows",
                                                                   low=0.01)}


def rows(examples: list[Example]) -> list[dict[str, Any]]:
    return [{"prompt": _hf.conversation(ex.prompt), "completion": [_hf.message(ex.completion)]}
            for ex in examples]


class SftLoraRecipe:
    name: ClassVar[str] = "sft-lora"
    kind: ClassVar[ModelKind] = "causal-lm"
    needs: ClassVar[Needs] = "sft"

    def check(self, job: TrainJob) -> None:
        _hf.check(job, PARAMS)

    def train(self, job: TrainJob) -> TrainResult:
        p = _hf.resolve(self.name, job.params, PARAMS)
        base = _hf.start(job)
        trl = _hf.require("trl")
        config = trl.SFTConfig(**_hf.arguments(job, p, base), max_length=p["max_length"],
                               completion_only_loss=True)
        with _hf.quiet():
            trainer = trl.SFTTrainer(
                model=base.model, args=config, processing_class=base.tokenizer,
                train_dataset=_hf.dataset(rows(job.train)),
                eval_dataset=_hf.dataset(rows(job.eval)) if job.eval else None,
                peft_config=_hf.lora(p))
        return _hf.fit(job, trainer, base, p, lambda history: {
            f"final_{k}": v for k, v in _hf.last(history, "loss").items()})
