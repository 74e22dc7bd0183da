"""The TRL recipes (`sft-lora`, `dpo`, `grpo`) on the CPU.

Training tests use a tiny randomly initialised Llama (2 layers, 64 wide) with SmolLM2's tokenizer,
saved once per session, so each run takes seconds; one short run proves the default path on the
real built-in SmolLM2. Each toy task is chosen so that a few steps move its figure reliably
whatever the seed: another machine's float kernels make a sampled run take another path.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from veteran.datasets.types import Example
from veteran.errors import VeteranError
from veteran.train.recipes._hf import RecipeError
from veteran.train.recipes.dpo import DpoRecipe
from veteran.train.recipes.grpo import GrpoRecipe
from veteran.train.recipes.sft_lora import SftLoraRecipe
from veteran.train.types import Progress, TrainJob

SYSTEM = "Classify the sentiment of the review as positive or negative."
WORDS = ["great", "awful", "lovely", "boring", "superb", "dull", "brilliant", "weak"]


def review(i: int) -> Example:
    word = WORDS[i % len(WORDS)]
    label = "positive" if i % 2 == 0 else "negative"
    return Example(
        id=f"t{i}", episode_id=f"e{i}",
        prompt=[{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"The film was {word}, number {i}."}],
        completion={"role": "assistant", "content": label},
        rejected={"role": "assistant", "content": "negative" if label == "positive" else
                  "positive"},
        reference={"label": label, "n": i})


def job(tmp: Path, recipe: str, base: str | None, params: dict[str, Any], *,
        train: list[Example] | None = None, eval: list[Example] | None = None,
        seed: int = 0, resume: bool = False, reward_funcs: list[Any] | None = None,
        progress: Callable[[Progress], None] = lambda _: None) -> TrainJob:
    return TrainJob(function="sentiment", recipe=recipe,
                    train=train if train is not None else [review(i) for i in range(16)],
                    eval=eval or [], output_dir=tmp / "model", checkpoint_dir=tmp / "ckpt",
                    params=params, seed=seed, base_model=base, resume=resume,
                    reward_funcs=reward_funcs or [], progress=progress)


def losses(history: list[dict[str, float]], key: str = "loss") -> list[float]:
    return [entry[key] for entry in history if key in entry]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Llama with SmolLM2's tokenizer. Its weights are drawn wide (std 0.5), so
    that its sampling is not flat over 49k tokens and GRPO has something to move."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, set_seed

    from veteran.providers.weights import builtin_location

    folder, gguf = builtin_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    set_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        intermediate_size=128, vocab_size=len(tokenizer), max_position_embeddings=512,
        tie_word_embeddings=True, initializer_range=0.5, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_lora_adapts_every_linear_layer_but_the_head_of_any_architecture() -> None:
    import peft
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from veteran.train.recipes import _hf

    params = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    llama = peft.get_peft_model(LlamaForCausalLM(LlamaConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=100)), _hf.lora(params))
    assert {name.rsplit(".", 1)[1] for name in llama.peft_config["default"].target_modules} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft notes that GPT-2's Conv1D stores weights transposed
        gpt2 = peft.get_peft_model(GPT2LMHeadModel(GPT2Config(
            n_embd=32, n_layer=1, n_head=2, vocab_size=100)), _hf.lora(params))
    targets = gpt2.peft_config["default"].target_modules
    assert {name.rsplit(".", 1)[1] for name in targets} == {"c_attn", "c_proj", "c_fc"}
    assert not any("lm_head" in name for name in targets)


# -- refusals (no training) -------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "params", "message"), [
    (SftLoraRecipe, {"epochs": 1, "lora_rank": 8}, "no parameter 'lora_rank'"),
    (SftLoraRecipe, {"learning_rate": "fast"}, "'learning_rate' must be float"),
    (SftLoraRecipe, {"batch_size": 0}, "'batch_size' must be int >= 1"),
    (SftLoraRecipe, {"batch_size": 2.5}, "'batch_size' must be int"),
    (SftLoraRecipe, {"lr_scheduler": "cyclic"}, "one of linear, cosine"),
    (DpoRecipe, {"num_generations": 4}, "no parameter 'num_generations'"),
    (GrpoRecipe, {"max_length": 128}, "no parameter 'max_length'"),
])
def test_bad_params_are_refused(tmp_path: Path, recipe: Any, params: dict[str, Any],
                                message: str) -> None:
    with pytest.raises(RecipeError, match=message) as caught:
        recipe().train(job(tmp_path, recipe.name, None, params))
    assert isinstance(caught.value, VeteranError)  # the CLI shows its message, no traceback


def test_a_missing_package_names_the_extra() -> None:
    from veteran.train.recipes import _hf

    with pytest.raises(RecipeError, match=r"pip install 'veteran\[train\]'"):
        _hf.require("trl_not_installed_here")


def test_params_given_as_text_are_converted() -> None:
    from veteran.train.recipes import _hf, sft_lora

    resolved = _hf.resolve("sft-lora", {"learning_rate": "1e-3", "max_steps": "4",
                                        "gradient_checkpointing": "false"}, sft_lora.PARAMS)
    assert (resolved["learning_rate"], resolved["max_steps"]) == (1e-3, 4)
    assert resolved["gradient_checkpointing"] is False and resolved["batch_size"] == 8


def test_refusals_before_training(tmp_path: Path) -> None:
    tiny = str(tmp_path)  # never loaded: each refusal comes first
    with pytest.raises(RecipeError, match="needs reward functions"):
        GrpoRecipe().train(job(tmp_path, "grpo", tiny, {}))
    with pytest.raises(RecipeError, match="multiple of num_generations"):
        GrpoRecipe().train(job(tmp_path, "grpo", tiny, {"batch_size": 6, "num_generations": 4},
                               reward_funcs=[lambda prompts, completions, **_: [0.0]]))
    unpaired = [review(0), Example("t1", "e1", review(1).prompt, review(1).completion)]
    with pytest.raises(RecipeError, match="1 example.* no rejected answer .first: t1"):
        DpoRecipe().train(job(tmp_path, "dpo", tiny, {}, train=unpaired))
    with pytest.raises(RecipeError, match="no training examples"):
        SftLoraRecipe().train(job(tmp_path, "sft-lora", tiny, {}, train=[]))
    with pytest.raises(RecipeError, match="cannot resume: no checkpoint"):
        SftLoraRecipe().train(job(tmp_path, "sft-lora", tiny, {}, resume=True))
    with pytest.raises(RecipeError,
                       match="neither 'smollm2-135m-instruct', an owned model, nor a local"):
        SftLoraRecipe().train(job(tmp_path, "sft-lora", str(tmp_path / "nowhere"), {}))


def test_checks_refuse_before_the_job_folder_exists(tmp_path: Path) -> None:
    """`check` (what `train_model` runs before it makes the job's folder) refuses what `train`
    would, loading nothing and writing nothing."""
    nowhere = str(tmp_path / "nowhere")
    with pytest.raises(RecipeError, match="has no parameter 'nope'"):
        SftLoraRecipe().check(job(tmp_path, "sft-lora", None, {"nope": 1}))
    with pytest.raises(RecipeError, match="parameter 'lora_r' must be int"):
        DpoRecipe().check(job(tmp_path, "dpo", None, {"lora_r": "x"}))
    unpaired = [review(0), Example("t1", "e1", review(1).prompt, review(1).completion)]
    with pytest.raises(RecipeError, match="no rejected answer .first: t1"):
        DpoRecipe().check(job(tmp_path, "dpo", None, {}, train=unpaired))
    with pytest.raises(RecipeError, match="needs reward functions"):
        GrpoRecipe().check(job(tmp_path, "grpo", None, {}))
    with pytest.raises(RecipeError, match="no training examples"):
        SftLoraRecipe().check(job(tmp_path, "sft-lora", None, {}, train=[]))
    with pytest.raises(RecipeError, match="neither 'smollm2-135m-instruct', an owned model"):
        SftLoraRecipe().check(job(tmp_path, "sft-lora", nowhere, {}))
    SftLoraRecipe().check(job(tmp_path, "sft-lora", None, {"max_steps": 2}))  # fit to train
    assert list(tmp_path.iterdir()) == []


# -- sft-lora ---------------------------------------------------------------------------------

SFT = {"max_steps": 6, "batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1,
       "save_steps": 2, "lr_scheduler": "constant"}


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory, tiny: str) -> Any:
    """One reference run of sft-lora (kept for the reproducibility and resume tests)."""
    tmp = tmp_path_factory.mktemp("sft")
    reports: list[Progress] = []
    result = SftLoraRecipe().train(job(tmp, "sft-lora", tiny, SFT, eval=[review(100 + i)
                                                                         for i in range(4)],
                                       progress=reports.append))
    return tmp, result, reports


@pytest.mark.slow
def test_sft_lora_lowers_the_loss_and_saves_an_adapter(sft_run: Any, tiny: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp, result, reports = sft_run
    loss = losses(result.history)
    assert len(loss) == 6 and loss[-1] < loss[0] * 0.9, loss
    assert result.kind == "causal-lm" and result.base_model == tiny
    assert result.metrics["final_loss"] == loss[-1]
    assert {"train_loss", "eval_loss"} <= set(result.metrics)
    assert result.params["lora_r"] == 16 and result.params["max_steps"] == 6
    assert result.seconds > 0
    steps = [r.step for r in reports if "loss" in r.metrics]
    assert steps == [1, 2, 3, 4, 5, 6] and {r.total for r in reports} == {6}

    adapter = tmp / "model" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32
    # peft's all-linear writes the module paths it chose: one per layer and projection
    assert {name.rsplit(".", 1)[-1] for name in config["target_modules"]} >= {
        "q_proj", "v_proj", "down_proj"}
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), adapter)
    trained = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert trained and any(float(p.abs().sum()) > 0 for p in trained)  # B starts at zero
    assert AutoTokenizer.from_pretrained(adapter).pad_token is not None
    assert sorted(p.name for p in (tmp / "ckpt").glob("checkpoint-*")) == [
        "checkpoint-4", "checkpoint-6"]  # save_total_limit 2


def _owned(models: Path, model_id: str, built: Path, base: str) -> Path:
    """`built` (a recipe's output folder) registered as owned model `model_id` in `models`."""
    import shutil

    folder = models / model_id
    shutil.copytree(built, folder)
    (folder / "veteran-model.json").write_text(json.dumps({
        "version": 1, "id": model_id, "function": "sentiment", "recipe": "sft-lora",
        "kind": "causal-lm", "base_model": base}))
    return folder


@pytest.mark.slow
def test_a_model_trains_on_top_of_an_owned_one_and_loads_through_it(
        sft_run: Any, tiny: str, tmp_path: Path) -> None:
    """sft-lora, then another adapter on the merged result (as grpo after sft): the new model
    names its base by id, and loading it merges the base's adapter first, then its own."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from veteran.models import format as owned

    sft_dir, _, _ = sft_run
    models = tmp_path / "models"
    parent = _owned(models, "sentiment-sft-lora-aaaaaa", sft_dir / "model", tiny)
    result = SftLoraRecipe().train(job(tmp_path / "child", "sft-lora", str(parent),
                                       {**SFT, "max_steps": 2}))
    assert result.base_model == "sentiment-sft-lora-aaaaaa"
    child = _owned(models, "sentiment-sft-lora-bbbbbb", tmp_path / "child" / "model",
                   result.base_model)

    def plain_base(name: str | None) -> tuple[Any, Any]:
        assert name == tiny
        return None, AutoModelForCausalLM.from_pretrained(tiny)

    _, chained = owned.load_causal_lm(child, owned.read_manifest(child), plain_base)
    by_hand = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny),
                                        parent / "adapter").merge_and_unload()
    only_parent = by_hand(torch.tensor([[1, 2, 3, 4]])).logits
    by_hand = PeftModel.from_pretrained(by_hand, child / "adapter").merge_and_unload()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        got, want = chained(ids).logits, by_hand(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny)(ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-3)  # the parent's adapter is in there
    assert not torch.allclose(got, only_parent, atol=1e-6)  # and the child's on top


@pytest.mark.slow
def test_sft_lora_same_seed_same_history(sft_run: Any, tiny: str, tmp_path: Path) -> None:
    _, first, _ = sft_run
    again = SftLoraRecipe().train(job(tmp_path, "sft-lora", tiny, SFT))
    assert losses(again.history) == pytest.approx(losses(first.history), rel=1e-5)


@pytest.mark.slow
def test_sft_lora_resumes_from_its_checkpoint(sft_run: Any, tiny: str, tmp_path: Path) -> None:
    """Stopped (Ctrl-C) at step 5, with a checkpoint at step 4: resuming finishes the run where
    the uninterrupted one went, its history continuing from the checkpoint."""
    _, whole, _ = sft_run

    def stop_at_five(report: Progress) -> None:
        if report.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SftLoraRecipe().train(job(tmp_path, "sft-lora", tiny, SFT, progress=stop_at_five))
    assert (tmp_path / "ckpt" / "checkpoint-4").is_dir()
    assert not (tmp_path / "model" / "adapter").exists()

    reports: list[Progress] = []
    resumed = SftLoraRecipe().train(job(tmp_path, "sft-lora", tiny, SFT, resume=True,
                                        progress=reports.append))
    assert [r.step for r in reports] == [5, 6]  # only the steps run after the checkpoint
    assert [entry["step"] for entry in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert losses(resumed.history) == pytest.approx(losses(whole.history), rel=1e-4)
    assert (tmp_path / "model" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_a_new_run_refuses_a_folder_with_checkpoints(sft_run: Any, tiny: str) -> None:
    tmp, _, _ = sft_run
    with pytest.raises(RecipeError, match="already holds checkpoints"):
        SftLoraRecipe().train(job(tmp, "sft-lora", tiny, SFT))


# -- dpo ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dpo_widens_the_margin(tiny: str, tmp_path: Path) -> None:
    """The toy preference: always "yes" over "no"."""
    pairs = [Example(f"p{i}", f"e{i}", review(i).prompt, {"role": "assistant", "content": "yes"},
                     rejected={"role": "assistant", "content": "no"}) for i in range(16)]
    result = DpoRecipe().train(job(tmp_path, "dpo", tiny, {
        "max_steps": 5, "batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1,
        "lr_scheduler": "constant"}, train=pairs, eval=pairs[:4]))
    margins, loss = losses(result.history, "rewards/margins"), losses(result.history)
    assert len(margins) == 5 and margins[-1] > margins[0] and margins[-1] > 0, margins
    assert loss[-1] < loss[0], loss
    assert result.metrics["rewards/margins"] == margins[-1]
    assert "eval_loss" in result.metrics and "eval_rewards/margins" in result.metrics
    assert (tmp_path / "model" / "adapter" / "adapter_config.json").is_file()


# -- grpo ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grpo_raises_the_reward(tiny: str, tmp_path: Path) -> None:
    """The toy reward: the share of completion tokens whose embedding (in the tiny model) lies on
    one side of a hyperplane, a direction a LoRA adapter can learn in a few steps.

    A run cannot be replayed on another machine: sampling turns the last bits in which CPUs
    (and thread counts) differ into other tokens, and each changes every later draw, so from
    about the fifth step a run elsewhere is a run with another seed. The verdict must hold
    for any seed: short completions (each token's credit is clear), groups of 8, a decaying
    learning rate, and the mean reward of the last four steps against the first four. In 14
    runs on one machine (seeds 0-5 and 12, 1 or 2 threads, three random tiny models) that gain
    was 0.34 to 0.52; with the learning rate at 1e-9 it was -0.004 to 0.09 (7 runs)."""
    from safetensors.torch import load_file

    embeddings = load_file(str(Path(tiny) / "model.safetensors"))["model.embed_tokens.weight"]
    good = embeddings[:, 0] > 0
    seen: list[tuple[Any, Any]] = []

    def one_side(prompts: list[Any], completions: list[Any], completion_ids: list[list[int]],
                 reference: list[Any], task_id: list[str], **_: Any) -> list[float]:
        seen.extend(zip(reference, task_id, strict=True))
        assert completions[0][0]["role"] == "assistant"
        return [float(good[ids].float().mean()) if ids else 0.0 for ids in completion_ids]

    result = GrpoRecipe().train(job(tmp_path, "grpo", tiny, {
        "max_steps": 16, "batch_size": 16, "num_generations": 8, "max_completion_length": 4,
        "learning_rate": 0.08, "lr_scheduler": "linear"}, reward_funcs=[one_side],
        eval=[review(100), review(101)]))
    reward = losses(result.history, "reward")
    assert len(reward) == 16
    first, last = sum(reward[:4]) / 4, sum(reward[-4:]) / 4
    assert last > first + 0.25, reward
    assert result.metrics["reward"] == reward[-1] and "eval_reward" in result.metrics
    assert "rewards/one_side/mean" in result.history[0]  # TRL names it after the function
    # The reward function sees each row's reference as it was, not its JSON text.
    assert ({"label": "positive", "n": 0}, "t0") in seen
    assert (tmp_path / "model" / "adapter" / "adapter_model.safetensors").is_file()


def test_async_reward_functions_stay_async() -> None:
    from veteran.train.recipes.grpo import _decoded

    async def judge(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
        return [float(r["n"]) for r in kw["reference"]]

    wrapped = _decoded(judge)
    assert inspect.iscoroutinefunction(wrapped) and wrapped.__name__ == "judge"
    assert asyncio.run(wrapped([], [], reference=['{"n": 2}'])) == [2.0]


# -- the built-in model -------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_lora_on_the_builtin_smollm2(tmp_path: Path) -> None:
    result = SftLoraRecipe().train(job(tmp_path, "sft-lora", None, {
        "max_steps": 2, "batch_size": 2, "logging_steps": 1}, train=[review(i) for i in range(4)]))
    assert result.base_model == "smollm2-135m-instruct"
    assert len(losses(result.history)) == 2 and all(0 < x < 20 for x in losses(result.history))
    assert (tmp_path / "model" / "adapter" / "adapter_model.safetensors").is_file()
