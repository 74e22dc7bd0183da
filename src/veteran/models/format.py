"""The owned-model file format: the folders training recipes write (`WORKSPACE/models/MODEL_ID/`,
kept by `registry.py`), read here so that the recipes that write them (`veteran.train`) and the
code that serves them (the `local` provider, `gateway/fewshot.py`) share one definition of each
format. It sits below both, as does the registry.

- `veteran-model.json` (the registry's): `version`, `id`, `kind`, `recipe`, `base_model`, ...
- kind "classifier": `classifier.json` (embedder, input rule, labels per head) and
  `classifier.safetensors` (one weight matrix and bias per head); served by the `local`
  provider without generation: embed, one matrix product per head, argmax.
- kind "causal-lm": `adapter/` (a peft LoRA adapter, merged into its base at load) or
  `weights/` (a whole Hugging Face model folder); served by the `local` provider.
- kind "fewshot": `examples.jsonl`, `embeddings.npy` and `fewshot.json`; used by the gateway
  (`gateway/fewshot.py`) in front of any provider.

A classifier and the few-shot selection read the same text of a request: its last user message
(`input_text`), which is what a classification function's caller puts the item in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import orjson

from veteran import extras
from veteran.errors import UpstreamError, VeteranError
from veteran.memory.context import last_user_text

if TYPE_CHECKING:
    from veteran.memory.types import Embedder, Vectors

MANIFEST = "veteran-model.json"
MANIFEST_VERSION = 1
ModelKind = Literal["causal-lm", "classifier", "fewshot"]
KINDS: tuple[ModelKind, ...] = get_args(ModelKind)
INPUT_RULE = "last-user-message"
CLASSIFIER_FILE = "classifier.json"
CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_VERSION = 1
FEWSHOT_FILE = "fewshot.json"
FEWSHOT_EXAMPLES = "examples.jsonl"
FEWSHOT_VECTORS = "embeddings.npy"
FEWSHOT_VERSION = 1
Matrix = npt.NDArray[np.float32]


def input_text(messages: Sequence[Any]) -> str:
    """What a classifier reads and few-shot examples are matched on: the last user message."""
    return last_user_text(messages).strip()

# An owned model may build on another (sft-lora, then grpo on it): at most this many deep.
MAX_CHAIN = 8


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's `veteran-model.json`, checked; `VeteranError` naming the file."""
    path = folder / MANIFEST
    try:
        manifest = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise VeteranError(f"{folder} is not an owned model folder (no {MANIFEST})") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise VeteranError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict):
        raise VeteranError(f"{path} must hold a JSON object")
    version = manifest.get("version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise VeteranError(f"{path}: version {version!r} is not one this veteran reads "
                           f"(up to {MANIFEST_VERSION}); upgrade veteran")
    if manifest.get("kind") not in KINDS:
        raise VeteranError(f"{path}: kind {manifest.get('kind')!r} is not one of "
                           f"{', '.join(KINDS)}")
    return manifest


def owned_kind(path: Path) -> str | None:
    """The kind of the owned model at `path`, or None when it is not an owned model folder."""
    if not (path / MANIFEST).is_file():
        return None
    kind = read_manifest(path)["kind"]
    return str(kind)


def _read_json(path: Path, version: int) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise VeteranError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise VeteranError(f"{path}: not a versioned JSON object")
    if data["version"] > version:
        raise VeteranError(f"{path}: version {data['version']} is newer than this veteran "
                           f"reads ({version}); upgrade veteran")
    return data


# Classifier


@dataclass(frozen=True, slots=True)
class Head:
    """One decision: the whole answer (`field` None) or one field of a JSON answer."""

    field: str | None
    labels: list[Any]  # answers (str) for the whole answer; JSON scalars for a field
    weight: Matrix  # (len(labels), dim)
    bias: Matrix  # (len(labels),)

    def predict(self, vectors: Matrix) -> npt.NDArray[np.intp]:
        """Index of the best label for each row of `vectors` (n, dim)."""
        logits = vectors @ self.weight.T + self.bias
        return np.asarray(np.argmax(logits, axis=1))


@dataclass(frozen=True, slots=True)
class ClassifierModel:
    """An embedder's name and dimension plus one linear head per decision."""

    embedder: str
    dim: int
    heads: list[Head]
    # JSON answers: the separators the training answers were written with; None: a label
    separators: tuple[str, str] | None = None
    input: str = INPUT_RULE

    @property
    def answers_json(self) -> bool:
        return self.separators is not None

    def answers(self, vectors: Matrix) -> list[str]:
        """The answer text for each embedded input."""
        picks = [head.predict(vectors) for head in self.heads]
        if self.separators is None:
            labels = self.heads[0].labels
            return [str(labels[i]) for i in picks[0]]
        out = []
        for row in range(len(vectors)):
            value = {str(h.field): h.labels[p[row]] for h, p in zip(self.heads, picks, strict=True)}
            out.append(json.dumps(value, ensure_ascii=False, separators=self.separators))
        return out

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Matrix] = {}
        for i, head in enumerate(self.heads):
            tensors[f"heads.{i}.weight"] = np.ascontiguousarray(head.weight, dtype=np.float32)
            tensors[f"heads.{i}.bias"] = np.ascontiguousarray(head.bias, dtype=np.float32)
        save_file(tensors, str(folder / CLASSIFIER_WEIGHTS))
        spec = {
            "version": CLASSIFIER_VERSION,
            "embedder": {"name": self.embedder, "dim": self.dim},
            "input": self.input,
            "output": "label" if self.separators is None else "json",
            "json_separators": list(self.separators) if self.separators else None,
            "heads": [{"field": h.field, "labels": h.labels} for h in self.heads],
        }
        (folder / CLASSIFIER_FILE).write_bytes(orjson.dumps(spec, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, folder: Path) -> ClassifierModel:
        from safetensors.numpy import load_file

        spec = _read_json(folder / CLASSIFIER_FILE, CLASSIFIER_VERSION)
        try:
            tensors = load_file(str(folder / CLASSIFIER_WEIGHTS))
            embedder, dim = str(spec["embedder"]["name"]), int(spec["embedder"]["dim"])
            heads = [Head(h["field"], list(h["labels"]), tensors[f"heads.{i}.weight"],
                          tensors[f"heads.{i}.bias"]) for i, h in enumerate(spec["heads"])]
            seps = spec.get("json_separators")
            separators = (str(seps[0]), str(seps[1])) if seps else None
        except (OSError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise VeteranError(f"classifier in {folder} is incomplete: "
                               f"{type(exc).__name__}: {exc}") from None
        if spec.get("input", INPUT_RULE) != INPUT_RULE:
            raise VeteranError(f"{folder / CLASSIFIER_FILE}: unknown input rule "
                               f"{spec['input']!r}; upgrade veteran")
        for head in heads:
            if head.weight.shape != (len(head.labels), dim) or head.bias.shape != (
                    len(head.labels),):
                raise VeteranError(f"classifier in {folder}: head {head.field!r} does not "
                                   f"match its labels and dimension {dim}")
        if not heads or (separators is None) != (heads[0].field is None):
            raise VeteranError(f"classifier in {folder}: heads do not match its output kind")
        return cls(embedder, dim, heads, separators)


@dataclass(frozen=True, slots=True)
class ServedClassifier:
    """A classifier with its embedder loaded, as the `local` provider serves it."""

    model: ClassifierModel
    embedder: Any  # an Embedder, with `count_tokens`

    @classmethod
    def load(cls, folder: Path, embedders: dict[str, Any], threads: int | None = None
             ) -> ServedClassifier:
        """Load the head and warm its embedder; `embedders` (by name) are shared between the
        classifiers of one provider, so each embedding model is loaded once."""
        model = ClassifierModel.load(folder)
        embedder = embedders.get(model.embedder)
        if embedder is None:
            embedder = embedders[model.embedder] = embedder_named(model.embedder, threads)
        if embedder.dim != model.dim:
            raise VeteranError(f"classifier in {folder} expects {model.dim}-dimensional "
                               f"embeddings; {model.embedder} gives {embedder.dim}")
        embedder.embed(["warm up"])  # load the weights now, not on the first request
        return cls(model, embedder)

    def answer(self, text: str) -> tuple[str, int]:
        """The answer to `text`, and the tokens the embedder read (its usage)."""
        try:
            vector = self.embedder.embed([text])
            tokens = min(self.embedder.count_tokens(text),
                         getattr(self.embedder, "max_tokens", 1 << 30))
            return self.model.answers(vector)[0], int(tokens)
        except Exception as exc:
            raise UpstreamError(f"local classifier failed: {type(exc).__name__}: {exc}"
                                ) from exc


# Few-shot examples


@dataclass(frozen=True, slots=True)
class FewshotExamples:
    """Examples (a user message and the answer given to it) with the embeddings of the user
    messages, rows L2-normalised."""

    ids: list[str]  # the trajectories the examples come from
    users: list[str]
    answers: list[str]
    vectors: Matrix  # (n, dim)
    embedder: str
    k: int = 4  # default number of examples per request

    def nearest(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The `k` examples most similar to `query` (dot product), best first."""
        if not len(self.ids) or k <= 0:
            return []
        scores = self.vectors @ query
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [(i, float(scores[i])) for i in ranked]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / FEWSHOT_EXAMPLES).open("wb") as out:
            for id_, user, answer in zip(self.ids, self.users, self.answers, strict=True):
                out.write(orjson.dumps({"id": id_, "user": user, "assistant": answer}) + b"\n")
        np.save(folder / FEWSHOT_VECTORS, np.ascontiguousarray(self.vectors, dtype=np.float32))
        spec = {"version": FEWSHOT_VERSION, "embedder": {"name": self.embedder,
                                                         "dim": int(self.vectors.shape[1])},
                "input": INPUT_RULE, "count": len(self.ids), "k": self.k}
        (folder / FEWSHOT_FILE).write_bytes(orjson.dumps(spec, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, folder: Path) -> FewshotExamples:
        spec = _read_json(folder / FEWSHOT_FILE, FEWSHOT_VERSION)
        try:
            rows = [orjson.loads(line) for line in
                    (folder / FEWSHOT_EXAMPLES).read_bytes().splitlines() if line.strip()]
            vectors = np.load(folder / FEWSHOT_VECTORS, allow_pickle=False)
            examples = cls([str(r["id"]) for r in rows], [str(r["user"]) for r in rows],
                           [str(r["assistant"]) for r in rows],
                           np.ascontiguousarray(vectors, dtype=np.float32),
                           str(spec["embedder"]["name"]), int(spec.get("k", 4)))
        except (OSError, KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise VeteranError(f"few-shot examples in {folder} are incomplete: "
                               f"{type(exc).__name__}: {exc}") from None
        if examples.vectors.ndim != 2 or len(examples.vectors) != len(rows):
            raise VeteranError(f"few-shot examples in {folder}: {len(rows)} examples but "
                               f"embeddings of shape {examples.vectors.shape}")
        return examples


# Causal LMs

def load_causal_lm(folder: Path, manifest: dict[str, Any],
                   load_base: Callable[[str | None], tuple[Any, Any]], *, _depth: int = 0
                   ) -> tuple[Any, Any]:
    """Tokenizer and model of an owned causal LM: `weights/` as a whole Hugging Face folder, or
    `adapter/` (peft) merged into a fresh copy of its base, so that generation costs what the
    base's does. The base is another owned causal LM when `base_model` names a model folder
    beside this one (a model trained on top of another: its own base is loaded the same way),
    else `load_base(manifest["base_model"])` gives its tokenizer and model. The tokenizer saved
    with the adapter wins."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    weights, adapter = folder / "weights", folder / "adapter"
    if weights.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(weights), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(weights), local_files_only=True)
        return tokenizer, model
    if not adapter.is_dir():
        raise VeteranError(f"owned model {folder} has neither weights/ nor adapter/")
    peft = extras.require("peft", extra="local", purpose=f"serving the LoRA adapter in {folder}")
    base = manifest.get("base_model")
    sibling = folder.parent / str(base) if base else None
    if sibling is not None and sibling != folder and owned_kind(sibling) == "causal-lm":
        if _depth >= MAX_CHAIN:
            raise VeteranError(f"owned model {folder} builds on more than {MAX_CHAIN} models "
                               "in a chain (or on itself)")
        tokenizer, model = load_causal_lm(sibling, read_manifest(sibling), load_base,
                                          _depth=_depth + 1)
    else:
        tokenizer, model = load_base(base)
    model = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    if any((adapter / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        tokenizer = AutoTokenizer.from_pretrained(str(adapter), local_files_only=True)
    return tokenizer, model


def embedder_named(name: str, threads: int | None = None) -> Embedder:
    """An embedder for a model trained with `name` (the shipped MiniLM, float or int8)."""
    from veteran.memory.embed import LOCAL_NAMES, MINILM_INT8, MiniLMEmbedder

    if name in LOCAL_NAMES:
        return MiniLMEmbedder(threads=threads)
    if name == MINILM_INT8:
        return MiniLMEmbedder(threads=threads, int8=True)
    raise VeteranError(f"this model was made with embedder {name!r}; only the shipped "
                       "all-MiniLM-L6-v2 (or its -int8 flavour) can be loaded here")
