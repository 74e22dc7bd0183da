from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest
from trl.data_utils import is_conversational, maybe_apply_chat_template

from tests.datasets.seed import BASE, CALLS, SYSTEM, Call, insert, workspace_config
from tests.datasets.validate import check_dpo_row, check_rft_row, check_sft_row
from veteran import __version__
from veteran.config import Config
from veteran.datasets import (
    FORMATS,
    Curated,
    ExportError,
    Filters,
    curate,
    export,
    manifest_from_json,
    manifest_to_json,
    read_manifest,
)
from veteran.datasets import formats as formats_module
from veteran.evals.graders import to_openai_grader
from veteran.store import Store

TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "parameters": {"type": "object", "properties": {
        "order": {"type": "string"}}, "required": ["order"]}}}]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return workspace_config(tmp_path / "ws")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/export.db")
    insert(opened, CALLS)
    yield opened
    opened.close()


@pytest.fixture
def sft(store: Store, config: Config) -> Curated:
    return curate(store, config, "support", split={"train": 0.5, "test": 0.5}, seed=3)


@pytest.fixture
def pairs(store: Store, config: Config) -> Curated:
    insert(store, [  # one more rated pair, so that both splits may get one
        Call("Can I pay by bank transfer?", "Yes, to the account on the invoice.", "p1",
             BASE + 100, feedback={"resolved": True}),
        Call("Can I pay by bank transfer?", "No.", "p2", BASE + 101,
             feedback={"resolved": False}),
    ])
    return curate(store, config, "support", Filters(metric="resolved"), kind="preference",
                  split={"train": 0.5, "test": 0.5}, seed=3)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def written(curated: Curated) -> list[str]:
    return [name for name, part in curated.splits.items() if part]


def test_openai_sft(sft: Curated, tmp_path: Path) -> None:
    manifest = export(sft, "openai-sft", tmp_path / "out")
    assert manifest.files == sorted(f"{name}.jsonl" for name in written(sft))
    rows = []
    for name in written(sft):
        part = jsonl(tmp_path / "out" / f"{name}.jsonl")
        assert len(part) == sft.counts[name]
        rows += part
    for row in rows:
        check_sft_row(row)
        assert row["messages"][0] == {"role": "system", "content": SYSTEM}
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "out" / "*.jsonl"),
                                   split="train", cache_dir=str(tmp_path / "cache"))
    assert len(loaded) == sft.counts["kept"] and is_conversational(loaded[0])


def test_openai_dpo(pairs: Curated, tmp_path: Path) -> None:
    export(pairs, "openai-dpo", tmp_path / "out")
    rows = [row for name in written(pairs) for row in jsonl(tmp_path / "out" / f"{name}.jsonl")]
    assert len(rows) == pairs.counts["kept"] == 2
    for row in rows:
        check_dpo_row(row)
    texts = {r["preferred_output"][0]["content"]: r["non_preferred_output"][0]["content"]
             for r in rows}
    assert texts == {"Billing > Invoices.": "No idea.",
                     "Yes, to the account on the invoice.": "No."}


def test_openai_rft_with_grader_and_tools(store: Store, config: Config, tmp_path: Path) -> None:
    record = Call("Where is order 42?", "Shipped yesterday.", "t1", BASE + 200)
    insert(store, [record])
    with store.engine.begin() as conn:  # the client offered tools with this one
        conn.exec_driver_sql(
            "UPDATE trajectories SET request = ? WHERE episode_id = 't1'",
            (json.dumps({"messages": [{"role": "user", "content": "Where is order 42?"}],
                         "tools": TOOLS}),))
    curated = curate(store, config, "support", kind="environment", split={"train": 1.0})
    grader = to_openai_grader("exact", {"type": "exact"})
    manifest = export(curated, "openai-rft", tmp_path / "out", grader=grader)
    assert manifest.files == ["grader.json", "train.jsonl"]
    assert json.loads((tmp_path / "out" / "grader.json").read_text()) == grader
    assert grader["reference"] == "{{item.reference}}"
    rows = jsonl(tmp_path / "out" / "train.jsonl")
    for row in rows:
        check_rft_row(row)
    (tooled,) = [r for r in rows if "tools" in r]
    assert tooled["tools"] == TOOLS and tooled["reference"] == "Shipped yesterday."
    assert tooled["variant"] == "v1" and tooled["feedback"] == {}
    sft = export(curated, "openai-sft", tmp_path / "sft")
    assert sft.content_hash != manifest.content_hash
    assert [r.get("tools") for r in jsonl(tmp_path / "sft" / "train.jsonl")].count(TOOLS) == 1
    export(curated, "hf-sft", tmp_path / "hf")
    part = datasets.load_from_disk(str(tmp_path / "hf" / "hf"))["train"]
    tools = [json.loads(t) for t in part["tools"] if t is not None]  # TRL decodes JSON text
    assert tools == [TOOLS] and part["tools"].count(None) == len(part) - 1


def test_hf_sft_reads_back_for_trl(sft: Curated, tmp_path: Path) -> None:
    export(sft, "hf-sft", tmp_path / "out")
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    assert sorted(loaded) == sorted(written(sft))
    for name, part in loaded.items():
        assert part.column_names == ["id", "episode_id", "messages", "prompt", "completion"]
        assert len(part) == sft.counts[name]
        row = part[0]
        assert is_conversational(row)
        assert row["messages"] == row["prompt"] + row["completion"]
        assert row["completion"][0]["role"] == "assistant"
        example = {e.id: e for e in sft.splits[name]}[row["id"]]
        assert row["episode_id"] == example.episode_id
        assert row["completion"][0]["content"] == example.completion["content"]


@pytest.mark.slow  # parses the built-in model's GGUF file for its tokenizer
def test_hf_dpo_applies_a_chat_template(pairs: Curated, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from veteran.providers.weights import builtin_location

    export(pairs, "hf-dpo", tmp_path / "out")
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    rows = [row for part in loaded.values() for row in part]
    assert len(rows) == 2
    folder, file = builtin_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    for row in rows:
        assert set(row) == {"id", "episode_id", "prompt", "chosen", "rejected"}
        assert is_conversational(row)
        text = maybe_apply_chat_template(
            {k: row[k] for k in ("prompt", "chosen", "rejected")}, tokenizer)
        assert SYSTEM in text["prompt"] and text["prompt"].rstrip().endswith("assistant")
        assert row["chosen"][0]["content"] in text["chosen"]
        assert row["rejected"][0]["content"] in text["rejected"]


def test_parquet(pairs: Curated, tmp_path: Path) -> None:
    export(pairs, "parquet", tmp_path / "out")
    name = written(pairs)[0]
    table = pq.read_table(tmp_path / "out" / f"{name}.parquet")
    assert table.column_names == ["id", "episode_id", "prompt", "completion", "rejected",
                                  "reference", "tools", "metadata"]
    row = table.to_pylist()[0]
    example = pairs.splits[name][0]
    assert row["id"] == example.id and json.loads(row["prompt"]) == example.prompt
    assert json.loads(row["rejected"]) == example.rejected
    assert row["reference"] == example.reference and row["tools"] is None
    assert json.loads(row["metadata"])["rejected_id"] == example.metadata["rejected_id"]
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "*.parquet"),
                                   split="train", cache_dir=str(tmp_path / "cache"))
    assert len(loaded) == 2


def test_manifest(sft: Curated, store: Store, config: Config, tmp_path: Path) -> None:
    first = export(sft, "parquet", tmp_path / "a")
    assert read_manifest(tmp_path / "a") == first
    assert read_manifest(tmp_path / "a" / "manifest.json") == first
    assert manifest_from_json(manifest_to_json(first)) == first
    assert first.function == "support" and first.format == "parquet" and first.seed == 3
    assert first.code_version == __version__ and first.version == 2
    # version 2 records each split's trajectories (not in the content hash: data files only)
    assert first.trajectories == {n: [e.id for e in part] for n, part in sft.splits.items()}
    v1 = {k: v for k, v in manifest_to_json(first).items() if k != "trajectories"}
    assert manifest_from_json({**v1, "version": 1}) == replace(first, trajectories=None)
    assert first.counts == sft.counts
    assert first.filters["kind"] == "sft" and first.filters["split"] == {"train": 0.5,
                                                                         "test": 0.5}
    assert first.filters["dedupe"] == 0.9 and first.filters["tags"] == {}
    assert first.content_hash.startswith("sha256:") and len(first.content_hash) == 71
    again = curate(store, config, "support", split={"train": 0.5, "test": 0.5}, seed=3)
    assert export(again, "parquet", tmp_path / "b").content_hash == first.content_hash
    hf = [export(again, "hf-sft", tmp_path / f"hf{i}").content_hash for i in range(2)]
    assert hf[0] == hf[1]  # Hugging Face folders too
    insert(store, [Call("A brand new question?", "A new answer.", "new", BASE + 500)])
    more = curate(store, config, "support", split={"train": 0.5, "test": 0.5}, seed=3)
    assert export(more, "parquet", tmp_path / "c").content_hash != first.content_hash
    with pytest.raises(ExportError, match="newer than this veteran reads"):
        manifest_from_json({**manifest_to_json(first), "version": 99})


def test_manifest_names_both_trajectories_of_a_pair(pairs: Curated, tmp_path: Path) -> None:
    manifest = export(pairs, "openai-dpo", tmp_path / "out")
    assert manifest.trajectories is not None
    for name, part in pairs.splits.items():
        expected = [i for e in part for i in (e.id, e.metadata["rejected_id"])]
        assert manifest.trajectories[name] == list(dict.fromkeys(expected))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_bad_exports_write_nothing(sft: Curated, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "exports" / "x"
    with pytest.raises(ExportError, match="unknown format 'csv'; formats: openai-sft"):
        export(sft, "csv", out)
    with pytest.raises(ExportError, match="needs preference pairs"):
        export(sft, "hf-dpo", out)
    with pytest.raises(ExportError, match="only with 'openai-rft'"):
        export(sft, "openai-sft", out, grader={"type": "string_check"})
    empty = Curated("support", "sft", Filters(), {"train": []}, {}, 0)
    with pytest.raises(ExportError, match="no examples to export"):
        export(empty, "hf-sft", out)
    assert not (tmp_path / "exports").exists()
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty"):
        export(sft, "openai-sft", out)
    assert leftovers(out) == ["keep.txt"]

    def broken(folder: Path, splits: Any) -> None:
        (folder / "train.jsonl").write_text("{}\n")
        raise RuntimeError("disk full")

    monkeypatch.setitem(formats_module.WRITERS, "openai-sft", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export(sft, "openai-sft", out, overwrite=True)
    assert leftovers(out) == ["keep.txt"] and leftovers(out.parent) == ["x"]
    monkeypatch.undo()
    manifest = export(sft, "openai-sft", out, overwrite=True)
    assert "keep.txt" not in leftovers(out) and "manifest.json" in leftovers(out)
    assert leftovers(out.parent) == ["x"]
    assert manifest.files == [f for f in leftovers(out) if f != "manifest.json"]


def test_empty_folder_is_used(sft: Curated, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    export(sft, "openai-sft", tmp_path / "empty")
    assert (tmp_path / "empty" / "manifest.json").is_file()
    assert not [name for name in leftovers(tmp_path) if name.startswith(".")]


def test_every_format_is_tested() -> None:
    assert FORMATS == ("openai-sft", "openai-dpo", "openai-rft", "hf-sft", "hf-dpo", "parquet")
