"""The export formats: one file (or Hugging Face folder) per non-empty split.

- `openai-sft`:  `{split}.jsonl`, `{"messages": prompt + [completion], "tools"?}`: OpenAI chat
  fine-tuning.
- `openai-dpo`:  `{split}.jsonl`, `{"input": {"messages", "tools"?}, "preferred_output": [m],
  "non_preferred_output": [m]}`: OpenAI preference fine-tuning.
- `openai-rft`:  `{split}.jsonl`, `{"messages": prompt, "reference", "tools"?, **metadata}`:
  OpenAI reinforcement fine-tuning, whose graders read `item.reference`.
- `hf-sft`:      `hf/` a `DatasetDict` with `messages` and the conversational `prompt` /
  `completion` (TRL's SFTTrainer: language modelling or prompt-completion loss).
- `hf-dpo`:      `hf/` a `DatasetDict` with `prompt`, `chosen`, `rejected` (TRL's conversational
  preference format).
- `parquet`:     `{split}.parquet`, one column per field, nested values as JSON text.

Hugging Face columns `tools` are JSON text (TRL decodes a string column); `id` and
`episode_id` are kept in every format but OpenAI's, which accepts no extra keys for SFT/DPO.
Splits without rows are not written: `datasets` cannot read an empty split back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from veteran.datasets.errors import ExportError
from veteran.datasets.types import Example
from veteran.extras import require

Splits = Mapping[str, list[Example]]
RFT_RESERVED = {"messages", "reference", "tools"}


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def openai_sft_row(e: Example) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": [*e.prompt, e.completion]}
    if e.tools:
        row["tools"] = e.tools
    return row


def openai_dpo_row(e: Example) -> dict[str, Any]:
    if e.rejected is None:
        raise ExportError(f"example {e.id} has no rejected answer (curate kind 'preference')")
    given: dict[str, Any] = {"messages": e.prompt}
    if e.tools:
        given["tools"] = e.tools
    return {"input": given, "preferred_output": [e.completion],
            "non_preferred_output": [e.rejected]}


def openai_rft_row(e: Example) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": e.prompt, "reference": e.reference}
    if e.tools:
        row["tools"] = e.tools
    row.update({k: v for k, v in e.metadata.items() if k not in RFT_RESERVED})
    return row


def hf_sft_row(e: Example) -> dict[str, Any]:
    return {"id": e.id, "episode_id": e.episode_id, "messages": [*e.prompt, e.completion],
            "prompt": e.prompt, "completion": [e.completion]}


def hf_dpo_row(e: Example) -> dict[str, Any]:
    if e.rejected is None:
        raise ExportError(f"example {e.id} has no rejected answer (curate kind 'preference')")
    return {"id": e.id, "episode_id": e.episode_id, "prompt": e.prompt,
            "chosen": [e.completion], "rejected": [e.rejected]}


def parquet_row(e: Example) -> dict[str, Any]:
    reference = e.reference
    return {
        "id": e.id, "episode_id": e.episode_id, "prompt": _json(e.prompt),
        "completion": _json(e.completion),
        "rejected": _json(e.rejected) if e.rejected is not None else None,
        "reference": reference if isinstance(reference, str) or reference is None
        else _json(reference),
        "tools": _json(e.tools) if e.tools else None, "metadata": _json(e.metadata),
    }


def _require(module: str, fmt: str) -> Any:
    return require(module, extra="train", purpose=f"format {fmt!r}", error=ExportError)


def _jsonl(row: Callable[[Example], dict[str, Any]]) -> Callable[[Path, Splits], None]:
    def write(folder: Path, splits: Splits) -> None:
        for name, examples in splits.items():
            if examples:
                with (folder / f"{name}.jsonl").open("wb") as f:
                    for e in examples:
                        f.write(orjson.dumps(row(e)) + b"\n")
    return write


def _hf(fmt: str, row: Callable[[Example], dict[str, Any]]) -> Callable[[Path, Splits], None]:
    def write(folder: Path, splits: Splits) -> None:
        datasets = _require("datasets", fmt)
        names = [name for name, examples in splits.items() if examples]
        rows = [row(e) for name in names for e in splits[name]]
        if any(e.tools for name in names for e in splits[name]):
            tools = (e.tools for name in names for e in splits[name])
            for r, t in zip(rows, tools, strict=True):
                r["tools"] = _json(t) if t else None
        try:  # one table for all splits: every split gets the same features
            whole = datasets.Dataset.from_list(rows)
        except (TypeError, ValueError) as exc:  # pyarrow's errors derive from these
            raise ExportError(f"the messages do not fit one Arrow schema ({exc}); the "
                              "'openai-sft' and 'parquet' formats take any message") from None
        parts, start = {}, 0
        for name in names:
            parts[name] = whole.select(range(start, start + len(splits[name])))
            start += len(splits[name])
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # a library call prints nothing on its own
        try:
            datasets.DatasetDict(parts).save_to_disk(str(folder / "hf"))
        finally:
            if bars:
                datasets.enable_progress_bars()
    return write


def _parquet(folder: Path, splits: Splits) -> None:
    pa = _require("pyarrow", "parquet")
    pq = _require("pyarrow.parquet", "parquet")
    text = pa.string()
    schema = pa.schema([(name, text) for name in (
        "id", "episode_id", "prompt", "completion", "rejected", "reference", "tools", "metadata")])
    for name, examples in splits.items():
        if examples:
            table = pa.Table.from_pylist([parquet_row(e) for e in examples], schema=schema)
            pq.write_table(table, folder / f"{name}.parquet")


WRITERS: dict[str, Callable[[Path, Splits], None]] = {
    "openai-sft": _jsonl(openai_sft_row),
    "openai-dpo": _jsonl(openai_dpo_row),
    "openai-rft": _jsonl(openai_rft_row),
    "hf-sft": _hf("hf-sft", hf_sft_row),
    "hf-dpo": _hf("hf-dpo", hf_dpo_row),
    "parquet": _parquet,
}
FORMATS: tuple[str, ...] = tuple(WRITERS)
PREFERENCE_FORMATS = frozenset({"openai-dpo", "hf-dpo"})
