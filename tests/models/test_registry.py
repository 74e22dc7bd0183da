"""The model registry: staging, registration with lineage, records, promotions log."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

import veteran
from veteran.errors import NotFound, VeteranError
from veteran.models import Lineage, ModelRecord, Registry, code_version
from veteran.models import registry as registry_module
from veteran.models.registry import RECORD_FILE
from veteran.train.types import TrainResult

MANIFEST = {"function": "triage", "format": "openai-sft", "filters": {"metric": "resolved"},
            "counts": {"train": 8, "test": 2}, "content_hash": "ab" * 32,
            "files": ["train.jsonl", "test.jsonl"], "created_at": 1.0, "code_version": "0.1.0",
            "seed": 7, "version": 1}


def _train(registry: Registry, *, function: str = "triage", recipe: str = "sft-lora",
           kind: str = "causal-lm") -> ModelRecord:
    staged = registry.stage(function, recipe, {"function": function, "recipe": recipe})
    (staged.path / "adapter").mkdir()
    (staged.path / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (staged.checkpoint_dir / "checkpoint-2").mkdir()
    result = TrainResult(kind=kind, base_model="smollm2-135m-instruct",  # type: ignore[arg-type]
                         metrics={"train_loss": 0.5, "eval_loss": 0.7},
                         history=[{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}],
                         params={"lr": 0.001, "epochs": 2, "rank": 8}, seconds=3.5)
    lineage = Lineage.current(dataset=MANIFEST, recipe=recipe, params={"lr": 0.001},
                              base_model="smollm2-135m-instruct", seed=7)
    return registry.register(staged, result, lineage)


def test_a_registered_model_keeps_its_lineage(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    record = _train(registry)
    assert re.fullmatch(r"triage-sft-lora-[0-9a-f]{6}", record.id)
    folder = tmp_path / "models" / record.id
    assert (folder / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert not (folder / "checkpoints").exists()  # checkpoints go once the model is registered
    assert not (tmp_path / "models" / ".staging" / record.id).exists()

    got = Registry(tmp_path).get(record.id)
    assert got == record
    assert got.kind == "causal-lm" and got.recipe == "sft-lora" and got.seed == 7
    assert got.base_model == "smollm2-135m-instruct"
    assert got.params == {"lr": 0.001, "epochs": 2, "rank": 8}  # as used, defaults included
    assert got.metrics == {"train_loss": 0.5, "eval_loss": 0.7} and got.seconds == 3.5
    lineage = got.lineage
    assert lineage.dataset == MANIFEST
    assert lineage.recipe == "sft-lora" and lineage.params == {"lr": 0.001}  # as asked for
    assert lineage.base_model == "smollm2-135m-instruct" and lineage.seed == 7
    assert lineage.code_version == veteran.__version__
    assert lineage.git_commit is None or re.fullmatch(r"[0-9a-f]{40}", lineage.git_commit)
    assert registry.history(record.id) == [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}]

    stored = orjson.loads((folder / RECORD_FILE).read_bytes())
    assert stored["version"] == 1 and stored["lineage"]["dataset"]["content_hash"] == "ab" * 32


def test_list_get_scores_and_status(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.list() == []
    a = _train(registry)
    b = _train(registry, function="echo", recipe="fewshot", kind="fewshot")
    assert [r.id for r in registry.list()] == [a.id, b.id]
    assert [r.id for r in registry.list("echo")] == [b.id]
    registry.set_scores(a.id, "tickets", {"passed": True, "diff": 0.01})
    registry.set_status(a.id, "promoted")
    again = registry.get(a.id)
    assert again.scores == {"tickets": {"passed": True, "diff": 0.01}}
    assert again.status == "promoted"
    with pytest.raises(NotFound, match="no model 'nope'"):
        registry.get("nope")
    with pytest.raises(NotFound):
        registry.get("../../etc")


def test_a_staged_model_is_found_for_resume_and_named_when_unfinished(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    staged = registry.stage("triage", "dpo", {"function": "triage", "recipe": "dpo", "seed": 3})
    assert staged.checkpoint_dir.is_dir()
    again = registry.staged(staged.id)
    assert again.job == {"function": "triage", "recipe": "dpo", "seed": 3}
    assert [s.id for s in registry.list_staged("triage")] == [staged.id]
    assert registry.list_staged("echo") == [] and registry.list() == []
    with pytest.raises(NotFound, match="still training"):
        registry.get(staged.id)
    with pytest.raises(NotFound, match="no unfinished training"):
        registry.staged("triage-dpo-000000")
    record = _train(registry)
    with pytest.raises(VeteranError, match="already trained"):
        registry.staged(record.id)


def test_model_ids_are_valid_variant_names_even_for_long_function_names(tmp_path: Path) -> None:
    model_id = Registry(tmp_path).new_id("f" * 64, "sft-lora")
    assert len(model_id) == 64 and re.fullmatch(r"f+-sft-lora-[0-9a-f]{6}", model_id)


def test_records_are_versioned_and_newer_ones_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    record = _train(registry)
    path = tmp_path / "models" / record.id / RECORD_FILE
    data = orjson.loads(path.read_bytes())
    del data["version"]  # the first shape had none
    path.write_bytes(orjson.dumps(data))
    assert registry.get(record.id).version == 1
    data["version"] = 99
    path.write_bytes(orjson.dumps(data))
    with pytest.raises(VeteranError, match="newer than this veteran"):
        registry.get(record.id)


def test_the_promotions_log_is_a_stack_per_function(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.active_promotion("triage") is None
    registry.log_promotion({"action": "promote", "function": "triage", "model": "a"})
    registry.log_promotion({"action": "promote", "function": "echo", "model": "e"})
    registry.log_promotion({"action": "promote", "function": "triage", "model": "b"})
    assert registry.active_promotion("triage")["model"] == "b"  # type: ignore[index]
    registry.log_promotion({"action": "rollback", "function": "triage", "model": "b"})
    assert registry.active_promotion("triage")["model"] == "a"  # type: ignore[index]
    registry.log_promotion({"action": "rollback", "function": "triage", "model": "a"})
    assert registry.active_promotion("triage") is None
    assert registry.active_promotion("echo")["model"] == "e"  # type: ignore[index]
    assert len(registry.promotions()) == 5


class _Git:
    def __init__(self, answers: dict[str, subprocess.CompletedProcess[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], Any]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, kwargs["cwd"]))
        return self.answers[argv[1]]


def _done(code: int, out: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, out, "")


def test_the_code_version_names_the_git_commit_only_of_a_checkout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    package = Path(veteran.__file__).resolve().parent
    git = _Git({"ls-files": _done(0, "__init__.py\n"), "rev-parse": _done(0, "c0ffee" * 6 + "\n")})
    monkeypatch.setattr(registry_module.subprocess, "run", git)
    code_version.cache_clear()
    try:
        assert code_version() == (veteran.__version__, "c0ffee" * 6)
        assert [argv for argv, _ in git.calls] == [
            ["git", "ls-files", "--error-unmatch", "--", "__init__.py"],
            ["git", "rev-parse", "HEAD"]]
        assert all(cwd == package for _, cwd in git.calls)
        # installed, not from a checkout (or one that does not track veteran): no commit
        monkeypatch.setattr(registry_module.subprocess, "run", _Git({"ls-files": _done(1)}))
        code_version.cache_clear()
        assert code_version() == (veteran.__version__, None)

        def missing(*args: Any, **kwargs: Any) -> None:
            raise FileNotFoundError("git")

        monkeypatch.setattr(registry_module.subprocess, "run", missing)
        code_version.cache_clear()
        assert code_version() == (veteran.__version__, None)
    finally:
        code_version.cache_clear()


def test_the_public_names_of_models() -> None:
    import veteran.models as models

    assert models.__all__ == sorted(models.__all__)
    for name in models.__all__:
        assert getattr(models, name) is not None, name
