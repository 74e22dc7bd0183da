"""Datasets: samples read from files or from the store, and splits by episode.

Files (`load_file`) are JSONL or CSV in inspect_ai's shape (`input`: a string or chat
messages, `target`: a string or a list of acceptable answers, optional `id`, `choices`,
`metadata`; other fields become metadata) or OpenAI evals JSONL (`input`: messages, `ideal`).

From the store (`from_store`), a sample is a trajectory: its input is the request's messages as
the client sent them. The gateway records the client's body, before it adds the function's
system prompt and memory context, so nothing has to be stripped: a variant run through the
gateway gets the same additions again. Its reference is the latest `demonstration` feedback, or
else the trajectory's own answer when it has positive feedback on `metric`. Two kinds of
trajectory are left out, and `LeftOut` says how many of each:

- evaluation calls (tagged with the store's `EVAL_TAGS`): earlier runs' samples, judges and
  canaries, unless `include_evals`; otherwise each run of a suite would grow the next one;
- the trajectories a model of the function was trained on (`trained`, from `trained_rows`:
  the "train" split its dataset's manifest records), or a gate would measure memorisation.
"""

from __future__ import annotations

import csv
import hashlib
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from veteran.datasets import DataError, read_manifest
from veteran.datasets.rows import answer_of
from veteran.datasets.splits import split_by
from veteran.evals.errors import DatasetError
from veteran.evals.types import Sample
from veteran.models import Registry
from veteran.store import Store, TrajectoryFilter
from veteran.types import Trajectory

ROLES = {"system", "developer", "user", "assistant", "tool"}
RESERVED = {"input", "target", "ideal", "id", "metadata", "choices", "episode_id", "tools"}


def content_id(messages: list[dict[str, Any]], reference: Any) -> str:
    """A sample id from its content: stable across runs and machines."""
    raw = orjson.dumps([messages, reference], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def _messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError("`input` must be a string or a non-empty list of chat messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"`input[{i}]` is not a chat message with a role in {sorted(ROLES)}")
        if "content" not in message and "tool_calls" not in message:
            raise ValueError(f"`input[{i}]` has no `content`")
    return [dict(m) for m in value]


def _reference(value: Any, field: str) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError(f"`{field}` must be a string or a list of strings")
        return list(value)
    if isinstance(value, str | int | float | dict):
        return value
    raise ValueError(f"`{field}` must be a string or a list of strings")


def sample_from_record(record: Mapping[str, Any]) -> Sample:
    """One sample from an inspect_ai or OpenAI evals record; `ValueError` says what is wrong."""
    if "input" not in record:
        raise ValueError("no `input` field")
    messages = _messages(record["input"])
    if "ideal" in record:  # OpenAI evals
        reference = _reference(record["ideal"], "ideal")
    else:
        reference = _reference(record.get("target"), "target")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("`metadata` must be an object")
    metadata = {**{k: v for k, v in record.items() if k not in RESERVED}, **metadata}
    if record.get("choices") is not None:
        if not isinstance(record["choices"], list):
            raise ValueError("`choices` must be a list")
        metadata["choices"] = record["choices"]
    tools = record.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ValueError("`tools` must be a list of OpenAI tools")
    given = record.get("id")
    if given is not None and (not isinstance(given, str | int) or isinstance(given, bool)):
        raise ValueError("`id` must be a string or an integer")
    episode = record.get("episode_id")
    return Sample(
        id=str(given) if given is not None else content_id(messages, reference),
        messages=messages, reference=reference, metadata=metadata,
        episode_id=str(episode) if episode is not None else None, tools=tools,
    )


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_no}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{line_no}: a row must be a JSON object")
            yield line_no, record


def _csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "input" not in reader.fieldnames:
            raise DatasetError(f"{path}:1: the header has no `input` column")
        for row in reader:
            if None in row:
                raise DatasetError(f"{path}:{reader.line_num}: more fields than the header")
            yield reader.line_num, {k: v for k, v in row.items() if v is not None}


def load_file(path: str | Path) -> list[Sample]:
    """Samples from a `.jsonl` or `.csv` file, in file order. Ids are the `id` field, or a
    hash of the content (repeats of one content get `#2`, `#3`...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".csv"}:
        raise DatasetError(f"{path}: a dataset file must be .jsonl or .csv")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    rows = _csv(path) if suffix == ".csv" else _jsonl(path)
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for line_no, record in rows:
        try:
            sample = sample_from_record(record)
        except ValueError as exc:
            raise DatasetError(f"{path}:{line_no}: {exc}") from None
        if sample.id in seen:
            if record.get("id") is not None:
                raise DatasetError(f"{path}:{line_no}: id {sample.id!r} repeats line "
                                   f"{seen[sample.id]}")
            copy = 2
            while f"{sample.id}#{copy}" in seen:
                copy += 1
            sample = Sample(**{**_fields(sample), "id": f"{sample.id}#{copy}"})
        seen[sample.id] = line_no
        samples.append(sample)
    return samples


def _fields(sample: Sample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in Sample.__slots__}


# From the store


def _positive(value: Any, wanted: Any) -> bool:
    if wanted is not None:
        return bool(value == wanted)
    if isinstance(value, bool):
        return value
    return isinstance(value, int | float) and value > 0


def sample_from_trajectory(
    trajectory: Trajectory, *, metric: str | None = None, value: Any = None,
    reference_metric: str | None = "demonstration",
) -> Sample:
    """A sample from a trajectory read in full with its feedback (see `from_store`)."""
    request = trajectory.request or {}
    feedback = {f.metric: f.value for f in trajectory.feedback or []}  # oldest first: latest wins
    reference: Any = None
    if reference_metric is not None and reference_metric in feedback:
        reference = answer_of(feedback[reference_metric])
    elif (metric is not None and metric in feedback and _positive(feedback[metric], value)
          and trajectory.response is not None):
        reference = answer_of(trajectory.response)
    metadata: dict[str, Any] = {
        **trajectory.tags, "function": trajectory.function, "variant": trajectory.variant,
    }
    return Sample(
        id=trajectory.id, messages=list(request.get("messages") or []), reference=reference,
        metadata=metadata, episode_id=trajectory.episode_id, tools=request.get("tools"),
        feedback=feedback,
    )


TRAINED_SPLIT = "train"  # the split a recipe learns from (`veteran.train`); "test" is held out


@dataclass(frozen=True)
class LeftOut:
    """What a dataset built from trajectories left out, and why."""

    evals: int = 0  # evaluation calls (tagged with the store's EVAL_TAGS)
    trained: int = 0  # trajectories a model of the function was trained on
    models: dict[str, int] = field(default_factory=dict)  # model id -> its trajectories left out
    # Models of the function whose dataset manifest records no trajectory ids (trained before
    # manifests recorded them): what they learned from could not be left out.
    unrecorded: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What a command prints about it (nothing when nothing was left out)."""
        out = []
        if self.evals:
            out.append(f"left out {self.evals} evaluation calls (earlier runs' samples, judges, "
                       "canaries)")
        if self.trained:
            by = ", ".join(f"{m} ({n})" for m, n in self.models.items())
            out.append(f"left out {self.trained} trajectories models were trained on: {by}")
        if self.unrecorded:
            out.append(f"could not leave out the training data of {', '.join(self.unrecorded)}: "
                       "their manifests record no trajectory ids (trained by an older veteran)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"evals": self.evals, "trained": self.trained, "models": dict(self.models),
                "unrecorded": list(self.unrecorded)}


@dataclass(frozen=True)
class TrainedRows:
    """The trajectories each registered model of a function was trained on."""

    models: dict[str, frozenset[str]] = field(default_factory=dict)
    unrecorded: tuple[str, ...] = ()


def trained_rows(workspace: Path, function: str) -> TrainedRows:
    """What every registered model of `function` in the workspace was trained on: the
    "train" split of its dataset's manifest (`models/MODEL_ID/dataset/manifest.json`)."""
    registry = Registry(workspace)
    models: dict[str, frozenset[str]] = {}
    unrecorded: list[str] = []
    for record in registry.list(function):
        try:
            manifest = read_manifest(registry.path(record.id) / "dataset")
        except DataError:
            unrecorded.append(record.id)
            continue
        if manifest.trajectories is None:
            unrecorded.append(record.id)
        else:
            models[record.id] = frozenset(manifest.trajectories.get(TRAINED_SPLIT, ()))
    return TrainedRows(models, tuple(unrecorded))


def from_store(store: Store, function: str, **options: Any) -> list[Sample]:
    """Samples from `function`'s trajectories, oldest first (`samples_from_store`, without
    saying what was left out)."""
    return samples_from_store(store, function, **options)[0]


def samples_from_store(
    store: Store,
    function: str,
    *,
    since: float | None = None,
    until: float | None = None,
    tags: Mapping[str, str] | None = None,
    metric: str | None = None,
    value: Any = None,
    reference_metric: str | None = "demonstration",
    limit: int | None = None,
    require_reference: bool = False,
    team: str | None = None,
    include_evals: bool = False,
    trained: TrainedRows | None = None,
) -> tuple[list[Sample], LeftOut]:
    """Samples from `function`'s trajectories, oldest first, and what was left out.

    `since`/`until` (UNIX seconds) and `tags` filter; `metric` keeps trajectories with feedback
    on it, and with `value`, those whose latest value on it equals `value`. The reference is the
    latest `reference_metric` feedback (a string, or an assistant message: its content), else
    the trajectory's own answer when its `metric` feedback is positive (equal to `value` when
    given, else true or a number above 0). Metadata holds the tags plus `function` and
    `variant` (which win over tags of those names); `limit` keeps the latest N. Evaluation
    calls are left out unless `include_evals`, and so is every trajectory in `trained`.
    """
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be at least 1, not {limit}")
    f = TrajectoryFilter(function=function, since=since, until=until, metric=metric,
                         tags=dict(tags or {}), team=team,
                         evals=None if include_evals else False)
    evals = 0 if include_evals else store.count(replace(f, evals=True))
    models: dict[str, Collection[str]] = dict(trained.models) if trained is not None else {}
    left: dict[str, int] = dict.fromkeys(models, 0)
    trained_count = 0
    kept: deque[Sample] = deque(maxlen=limit)
    for trajectory in store.export(f):
        by = [m for m, ids in models.items() if trajectory.id in ids]
        if by:
            trained_count += 1
            for m in by:
                left[m] += 1
            continue
        sample = sample_from_trajectory(trajectory, metric=metric, value=value,
                                        reference_metric=reference_metric)
        if metric is not None and value is not None and sample.feedback.get(metric) != value:
            continue
        if require_reference and sample.reference is None:
            continue
        kept.append(sample)
    left_out = LeftOut(evals=evals, trained=trained_count,
                       models={m: n for m, n in left.items() if n},
                       unrecorded=trained.unrecorded if trained is not None else ())
    return list(kept), left_out


# Splits


def split(
    samples: Sequence[Sample],
    fractions: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
) -> dict[str, list[Sample]]:
    """Samples split by episode: a hash of (seed, episode id) picks each episode's split, so
    one episode never lands in two splits and the same input gives the same split. Samples
    without an episode split on their own id. Sizes follow `fractions` (normalised) only
    approximately; order within a split is the input order."""
    try:
        return split_by(
            samples,
            lambda s: f"episode:{s.episode_id}" if s.episode_id else f"sample:{s.id}",
            fractions if fractions is not None else {"train": 0.8, "test": 0.2},
            seed=seed,
        )
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
