"""What the TRL recipes (`sft-lora`, `dpo`, `grpo`) share: their parameters, the base model and
tokenizer, chat rows for `datasets`, the LoRA adapter, and one training run from seed to result.

A run seeds everything, loads the base (the built-in SmolLM2 from its GGUF file, or a local
Hugging Face folder; nothing is downloaded), lets TRL wrap it in a fresh LoRA adapter, checkpoints
into `job.checkpoint_dir` (resumable with `job.resume`), reports each logged step to
`job.progress`, and saves the adapter and tokenizer to `job.output_dir / "adapter"`.

torch, transformers, datasets, peft and TRL are imported inside functions: the gateway imports
nothing of this, and a missing package is named with the `veteran[train]` extra.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from veteran import extras
from veteran.errors import RecipeError as RecipeError  # defined with the whole tree
from veteran.errors import VeteranError
from veteran.train.types import Progress, TrainJob, TrainResult

ADAPTER = "adapter"
# Every linear layer but the output head, whatever the architecture calls them (for Llama-style
# models such as SmolLM2: q/k/v/o_proj, gate/up/down_proj).
TARGET_MODULES = "all-linear"
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


def require(module: str) -> ModuleType:
    """Import one of the training packages, or say which extra brings it."""
    return extras.require(module, extra="train", purpose="training", error=RecipeError)


# -- parameters ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """One recipe parameter: its default fixes its type (int, float, bool or str); `low` and
    `high` bound numbers (inclusive), `choices` bounds strings, `optional` admits None."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    kind: type | None = None  # when the default is None

    @property
    def type(self) -> type:
        return self.kind or type(self.default)

    def describe(self) -> str:
        bounds = [f">= {self.low:g}" if self.low is not None else "",
                  f"<= {self.high:g}" if self.high is not None else ""]
        if self.choices:
            bounds = ["one of " + ", ".join(self.choices)]
        text = " and ".join(b for b in bounds if b)
        return f"{self.type.__name__}{' ' + text if text else ''}"


# Shared by the three recipes; each overrides defaults and adds its own (see docs/recipes.md).
COMMON: dict[str, Param] = {
    "epochs": Param(1.0, "passes over the training rows", low=0.01),
    "max_steps": Param(None, "stop after this many optimizer steps (overrides epochs)",
                       low=1, optional=True, kind=int),
    "learning_rate": Param(2e-4, "peak AdamW learning rate", low=1e-9, high=1.0),
    "lr_scheduler": Param("linear", "learning-rate schedule", choices=SCHEDULERS),
    "warmup_steps": Param(0, "optimizer steps of linear warm-up", low=0),
    "weight_decay": Param(0.0, "AdamW weight decay", low=0.0, high=1.0),
    "batch_size": Param(8, "rows per device per step", low=1),
    "grad_accum": Param(1, "batches accumulated per optimizer step", low=1),
    "max_length": Param(256, "tokens per row (prompt + answer), truncated beyond", low=8),
    "lora_r": Param(16, "LoRA rank", low=1),
    "lora_alpha": Param(32, "LoRA scaling numerator (scale = alpha / r)", low=1),
    "lora_dropout": Param(0.05, "dropout on the LoRA path", low=0.0, high=0.9),
    "logging_steps": Param(5, "steps between logged (and reported) metrics", low=1),
    "save_steps": Param(50, "steps between checkpoints", low=1),
    "save_total_limit": Param(2, "checkpoints kept (older ones deleted)", low=1),
    "eval_steps": Param(None, "steps between evaluations on the eval rows (default: at the end)",
                        low=1, optional=True, kind=int),
    "gradient_checkpointing": Param(False, "recompute activations to save memory (slower)"),
}


def resolve(recipe: str, given: Mapping[str, Any], spec: Mapping[str, Param]) -> dict[str, Any]:
    """`given` checked against `spec` and completed with defaults. Strings (as `--param K=V`
    passes them) are converted; anything unknown or out of bounds is a `RecipeError`."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise RecipeError(f"recipe {recipe!r} has no parameter {', '.join(map(repr, unknown))}; "
                          f"it accepts {', '.join(sorted(spec))}")
    resolved = {}
    for key, param in spec.items():
        value = given.get(key, param.default)
        try:
            resolved[key] = _convert(value, param)
        except (TypeError, ValueError):
            raise RecipeError(f"recipe {recipe!r}: parameter {key!r} must be "
                              f"{param.describe()}{' or none' if param.optional else ''}, "
                              f"not {value!r}") from None
    return resolved


def _convert(value: Any, param: Param) -> Any:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if param.optional:
            return None
        raise ValueError("missing")
    want = param.type
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError("not a boolean")
    if isinstance(value, bool):  # True is an int to Python, never a number here
        raise ValueError("a boolean")
    if want is int:
        number = float(value) if isinstance(value, str) else value
        if not isinstance(number, int | float) or not float(number).is_integer():
            raise ValueError("not an integer")
        value = int(number)
    elif want is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("not finite")
    elif not isinstance(value, str) or (param.choices and value not in param.choices):
        raise ValueError("not a choice")
    if (param.low is not None and value < param.low) or (
            param.high is not None and value > param.high):
        raise ValueError("out of bounds")
    return value


# -- data ----------------------------------------------------------------------------------------


ROLES = {"developer": "system"}


def message(msg: Mapping[str, Any]) -> dict[str, str]:
    """One chat message as `{"role", "content"}` text, one Arrow schema for every row: parts are
    joined, and tool calls (which the chat templates of small models cannot render) become their
    JSON text, so a model learns to write them."""
    role = str(msg.get("role", "user"))
    content = msg.get("content")
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    text = content if isinstance(content, str) else ""
    if not text and msg.get("tool_calls"):
        text = json.dumps(msg["tool_calls"], ensure_ascii=False)
    return {"role": ROLES.get(role, role), "content": text}


def conversation(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [message(m) for m in messages]


def dataset(rows: list[dict[str, Any]]) -> Any:
    return require("datasets").Dataset.from_list(rows)


# -- model ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Base:
    model: Any
    tokenizer: Any
    name: str  # as recorded in the result: the built-in's name or the folder given
    cuda: bool


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No tqdm bars from transformers (GGUF conversion, weights: the local provider's
    `quiet_loading`) or datasets (tokenizing) while a recipe runs: progress goes to
    `job.progress` instead; nor transformers' notice that TRL and peft still read
    `is_gradient_checkpointing`. The previous state is restored."""
    from veteran.providers.weights import quiet_loading

    require("transformers.utils.logging")
    ds_tqdm = require("datasets.utils.tqdm")
    ds_on = ds_tqdm.is_progress_bar_enabled()
    ds_tqdm.disable_progress_bars()
    try:
        with quiet_loading(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"`is_gradient_checkpointing` is deprecated",
                                    FutureWarning)
            yield
    finally:
        if ds_on:
            ds_tqdm.enable_progress_bars()


@dataclass(frozen=True, slots=True)
class BaseSource:
    """Where a base model is, found without loading it."""

    name: str  # the built-in's name or the path given
    folder: str  # what `from_pretrained` loads (an owned model: its folder)
    gguf: str | None = None  # the GGUF file in `folder`
    owned: bool = False  # an owned causal LM (its adapter goes onto its own base)


def locate_base(base_model: str | None) -> BaseSource:
    """The built-in SmolLM2 (None or its name), an owned causal LM's folder, a `.gguf` file or a
    Hugging Face folder; a `RecipeError` when `base_model` is none of them."""
    from veteran.models import format as owned
    from veteran.providers.weights import BUILTIN, builtin_location

    if base_model in (None, BUILTIN):
        folder, gguf = builtin_location()
        return BaseSource(BUILTIN, folder, gguf)
    path = Path(str(base_model)).expanduser()
    if owned.owned_kind(path) == "causal-lm":
        return BaseSource(str(base_model), str(path), owned=True)
    if path.is_file() and path.suffix == ".gguf":
        return BaseSource(str(base_model), str(path.parent), path.name)
    if (path / "config.json").is_file():
        return BaseSource(str(base_model), str(path))
    raise RecipeError(f"base model {base_model!r} is neither {BUILTIN!r}, an owned "
                      "model, nor a local Hugging Face model folder or .gguf file")


def check(job: TrainJob, spec: Mapping[str, Param]) -> dict[str, Any]:
    """What a TRL recipe refuses before it trains (`Recipe.check`): its parameters (resolved
    and returned), no examples, a missing package, a base model that is not there."""
    p = resolve(job.recipe, job.params, spec)
    if not job.train:
        raise RecipeError(f"recipe {job.recipe!r} got no training examples")
    for module in ("torch", "transformers", "datasets", "peft", "trl"):
        require(module)
    locate_base(job.base_model)
    return p


def load_base(base_model: str | None) -> Base:
    """The built-in SmolLM2 (None or its name), a `.gguf` file, or a Hugging Face folder; bf16
    on a GPU, float32 on the CPU. The tokenizer gets a pad token (its EOS) when it has none."""
    torch = require("torch")
    transformers = require("transformers")
    cuda = bool(torch.cuda.is_available())
    where = locate_base(base_model)
    if where.owned:
        return _owned_base(Path(where.folder), cuda)
    name, folder, gguf = where.name, where.folder, where.gguf
    source: dict[str, Any] = {}
    if gguf:
        source["gguf_file"] = gguf
    weights = dict(source, dtype=torch.bfloat16 if cuda else torch.float32)
    if gguf and hasattr(transformers, "GgufConfig"):
        # Dense weights to train on: transformers 5 would otherwise keep GGUF blocks where it
        # has a kernel for them, and refuse to train that model.
        weights["quantization_config"] = transformers.GgufConfig(dequantize=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **source)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, **weights)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"cannot load base model {name!r}: {exc}") from exc
    if getattr(model, "hf_quantizer", None) is not None:  # dequantized, yet still marked
        model.hf_quantizer.remove_quantization_config(model)
    return _padded(Base(model, tokenizer, name, cuda))


def _padded(base: Base) -> Base:
    """`base` with a pad token (its EOS) where the tokenizer has none."""
    if base.tokenizer.pad_token is None:
        base.tokenizer.pad_token = base.tokenizer.eos_token
    if base.model.config.pad_token_id is None:
        base.model.config.pad_token_id = base.tokenizer.pad_token_id
    return base


def _owned_base(folder: Path, cuda: bool) -> Base:
    """An owned causal LM (say an sft-lora model, to train grpo on): its adapter merged into its
    own base, loaded as `load_base` loads that one. Named by its model id (the folder's name),
    which is how the new model's manifest finds it again, beside itself in `models/`."""
    from veteran.models import format as owned

    def base_of(name: str | None) -> tuple[Any, Any]:
        loaded = load_base(name)
        return loaded.tokenizer, loaded.model

    try:
        tokenizer, model = owned.load_causal_lm(folder, owned.read_manifest(folder), base_of)
    except VeteranError as exc:
        raise RecipeError(f"cannot load base model {folder.name!r}: {exc.message}") from exc
    return _padded(Base(model, tokenizer, folder.name, cuda))


def lora(p: Mapping[str, Any]) -> Any:
    peft = require("peft")
    return peft.LoraConfig(r=p["lora_r"], lora_alpha=p["lora_alpha"],
                           lora_dropout=p["lora_dropout"], target_modules=TARGET_MODULES,
                           bias="none", task_type="CAUSAL_LM")


# -- the run -------------------------------------------------------------------------------------


def start(job: TrainJob) -> Base:
    """Seed, check the checkpoint folder against `job.resume`, load the base model."""
    transformers = require("transformers")
    if not job.train:
        raise RecipeError(f"recipe {job.recipe!r} got no training examples")
    job.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last = transformers.trainer_utils.get_last_checkpoint(str(job.checkpoint_dir))
    if job.resume and last is None:
        raise RecipeError(f"cannot resume: no checkpoint in {job.checkpoint_dir}")
    if not job.resume and last is not None:
        raise RecipeError(f"{job.checkpoint_dir} already holds checkpoints; resume from them "
                          "or train into an empty folder")
    # Cheap determinism only: seeds for python, numpy and torch. Torch's deterministic-algorithms
    # switch is process-wide and costly on GPUs; CPU runs are reproducible without it.
    transformers.set_seed(job.seed)
    with quiet():
        return load_base(job.base_model)


def arguments(job: TrainJob, p: Mapping[str, Any], base: Base) -> dict[str, Any]:
    """The TrainingArguments every TRL config takes from the common parameters."""
    transformers = require("transformers")
    evaluating = bool(job.eval) and p["eval_steps"] is not None
    # transformers 5 renamed gradient checkpointing; TRL's configs still default the old name on.
    fields = transformers.TrainingArguments.__dataclass_fields__
    checkpointing = ("activation_checkpointing" if "activation_checkpointing" in fields
                     else "gradient_checkpointing")
    return {
        checkpointing: p["gradient_checkpointing"],
        "output_dir": str(job.checkpoint_dir),
        "num_train_epochs": p["epochs"],
        "max_steps": p["max_steps"] or -1,
        "learning_rate": p["learning_rate"],
        "lr_scheduler_type": p["lr_scheduler"],
        "warmup_steps": p["warmup_steps"],
        "weight_decay": p["weight_decay"],
        "per_device_train_batch_size": p["batch_size"],
        "per_device_eval_batch_size": p["batch_size"],
        "gradient_accumulation_steps": p["grad_accum"],
        "logging_strategy": "steps",
        "logging_steps": p["logging_steps"],
        "save_strategy": "steps",
        "save_steps": p["save_steps"],
        "save_total_limit": p["save_total_limit"],
        "eval_strategy": "steps" if evaluating else "no",
        "eval_steps": p["eval_steps"] if evaluating else None,
        "seed": job.seed,
        "data_seed": job.seed,
        "use_cpu": not base.cuda,
        "bf16": base.cuda,
        "fp16": False,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _progress_callback(job: TrainJob) -> Any:
    callback: Any = require("transformers").TrainerCallback

    class Report(callback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kwargs: Any) -> None:
            logs = logs or {}
            if "train_runtime" not in logs:  # the end-of-run summary is not a step
                job.progress(Progress(int(state.global_step), int(state.max_steps),
                                      _numbers(logs)))

    return Report()


def _numbers(logs: Mapping[str, Any]) -> dict[str, float]:
    """The figures of one log entry, without its place (step, epoch) or speed."""
    return {key: float(value) for key, value in logs.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
            and key not in ("step", "epoch") and not key.endswith(("_runtime", "_per_second"))}


def fit(job: TrainJob, trainer: Any, base: Base, p: Mapping[str, Any],
        final: Callable[[list[dict[str, float]]], dict[str, float]]) -> TrainResult:
    """Train (resuming when asked), evaluate on `job.eval`, save the adapter and tokenizer, and
    sum up. `final` picks the recipe's headline figures from the logged history."""
    trainer.add_callback(_progress_callback(job))
    # With tqdm off, transformers prints every log dict to stdout instead; the report replaces it.
    trainer.remove_callback(require("transformers").PrinterCallback)
    began = time.monotonic()
    with quiet(), warnings.catch_warnings():
        # Each checkpoint's adapter save looks for the base's config.json to see whether the
        # vocabulary grew; a GGUF base has none, by design, and LoRA never grows it.
        warnings.filterwarnings("ignore", "Could not find a config file", UserWarning, r"peft\.")
        output = trainer.train(resume_from_checkpoint=True if job.resume else None)
    seconds = time.monotonic() - began
    history = [{"step": float(entry["step"]), **_numbers(entry)}
               for entry in trainer.state.log_history if "train_runtime" not in entry]
    metrics = {"train_loss": float(output.training_loss), **final(history)}
    if job.eval:
        with quiet():
            evaluated = trainer.evaluate()
        metrics.update(_numbers(evaluated))
    folder = job.output_dir / ADAPTER
    folder.mkdir(parents=True, exist_ok=True)
    # No embedding layers to save (LoRA leaves them alone); "auto" would look for the base's
    # config.json, which a GGUF folder lacks, and then ask the Hub.
    trainer.model.save_pretrained(str(folder), save_embedding_layers=False)
    base.tokenizer.save_pretrained(str(folder))
    return TrainResult(kind="causal-lm", base_model=base.name, metrics=metrics, history=history,
                       params=dict(p), seconds=round(seconds, 3))


def last(history: list[dict[str, float]], key: str) -> dict[str, float]:
    """`{key: the last logged value}`, or nothing when it was never logged."""
    values = [entry[key] for entry in history if key in entry]
    return {key: values[-1]} if values else {}
