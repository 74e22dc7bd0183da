"""The words of training data: an **example** is one curated trajectory (the prompt the model
saw, the answer to learn, optionally a worse answer to the same prompt), and a **manifest**
records how a dataset was made (filters, counts, content hash) so a model's lineage can name
exactly what it learned from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# 2: `trajectories` (the trajectory ids of each split's rows); a version 1 manifest reads with
# `trajectories` None (not recorded).
MANIFEST_VERSION = 2
# What a dataset is made for: supervised answers, preference pairs, or environment tasks
# (references for graders). A recipe's `needs` is one of these.
Kind = Literal["sft", "preference", "environment"]


@dataclass(frozen=True, slots=True)
class Example:
    id: str  # the trajectory id (for a preference pair: the preferred trajectory's)
    episode_id: str  # splits never put one episode in two splits
    # The chat messages the model saw: the function's system prompt first (as the gateway adds
    # it when serving the function), then the client's messages.
    prompt: list[dict[str, Any]]
    # The assistant message to learn: {"role": "assistant", "content": ...} (or tool_calls).
    completion: dict[str, Any]
    # A worse assistant message for the same prompt (preference data), or None.
    rejected: dict[str, Any] | None = None
    reference: Any = None  # what graders compare against (RFT rows, environments)
    tools: list[dict[str, Any]] | None = None  # OpenAI tools offered with the prompt
    metadata: dict[str, Any] = field(default_factory=dict)  # tags, variant, feedback values

    @property
    def completion_text(self) -> str:
        content = self.completion.get("content")
        return content if isinstance(content, str) else ""


@dataclass(frozen=True, slots=True)
class Manifest:
    """Written next to every export as `manifest.json` (and kept in a model's lineage)."""

    function: str
    format: str  # e.g. "openai-sft", "hf-dpo", "parquet"
    filters: dict[str, Any]  # as given: since/until/tags/variant/metric/value/...
    counts: dict[str, int]  # rows per split, plus read / duplicates / without_target ...
    content_hash: str  # sha256 over the written files' bytes, in file-name order
    files: list[str]  # relative to the export folder
    created_at: float
    code_version: str
    seed: int
    # The trajectory ids each split's rows were made from (a preference row: both answers'
    # trajectories), so a suite can leave out what a model was trained on. None: not recorded
    # (a version 1 manifest). Not part of `content_hash`, which covers the data files only.
    trajectories: dict[str, list[str]] | None = None
    version: int = MANIFEST_VERSION
