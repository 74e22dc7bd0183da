"""The model registry: every trained model is a folder in the workspace, with its lineage.

```
WORKSPACE/models/
  MODEL_ID/                  a registered model (MODEL_ID = FUNCTION-RECIPE-6 hex digits)
    veteran-model.json       the record: kind, recipe, parameters, lineage, metrics, scores
    history.jsonl            the recipe's logged steps (loss, reward, ...)
    job.json                 how it was asked for (what `--resume` re-runs)
    dataset/                 the exported training data and its manifest.json
    adapter/ | weights/ | examples.jsonl | ...   the recipe's artifacts
  .staging/MODEL_ID/         a model being trained (checkpoints/ inside), until registered
  promotions.jsonl           every promotion and rollback, appended (what rollback undoes)
```

A model is built in `.staging/` and moved into place by one rename once its record is
written, so `models/MODEL_ID/` always holds a complete model. Model ids are valid variant
names, so a promoted model is served as the variant `MODEL_ID` of its function.

The registry sits below `veteran.train` (which fills it) beside the file format it shares with
the `local` provider: it knows a recipe's result only by the fields it records (`Trained`).
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import orjson

from veteran.config import Config
from veteran.errors import NotFound, VeteranError
from veteran.models.format import MANIFEST, ModelKind

MODELS_DIR = "models"
STAGING_DIR = ".staging"
RECORD_FILE = MANIFEST
HISTORY_FILE = "history.jsonl"
JOB_FILE = "job.json"
CHECKPOINTS_DIR = "checkpoints"
PROMOTIONS_FILE = "promotions.jsonl"
RECORD_VERSION = 1
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # config.NAME_PATTERN

Status = str  # "ready" | "promoted" | "refused" | "rolled-back"


@functools.cache
def code_version() -> tuple[str, str | None]:
    """(veteran's version, the git commit it runs from, or None when not a git checkout).
    The version is the installed distribution's: importing the `veteran` package for its
    `__version__` would make this low room depend on everything the package's face imports."""
    package = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=package, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    # A package installed into a virtual environment that sits inside some other git checkout
    # is not that checkout's code: ask that git tracks this very file.
    tracked = git("ls-files", "--error-unmatch", "--", "__init__.py")
    commit = git("rev-parse", "HEAD") if tracked else None
    try:
        version = metadata.version("veteran")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        version = "unknown"
    return version, commit


class Trained(Protocol):
    """What the registry records of a recipe's result (`veteran.train.TrainResult`)."""

    @property
    def kind(self) -> ModelKind: ...
    @property
    def base_model(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def metrics(self) -> dict[str, float]: ...
    @property
    def history(self) -> Sequence[dict[str, float]]: ...
    @property
    def seconds(self) -> float: ...


@dataclass(frozen=True)
class Lineage:
    """What a model was made from: enough to make it again."""

    dataset: dict[str, Any]  # the training data's manifest (`veteran.datasets.Manifest`)
    recipe: str
    params: dict[str, Any]  # as asked for (`--param`); the record's `params` are those used
    base_model: str | None
    seed: int
    code_version: str  # veteran's version
    git_commit: str | None  # the commit veteran ran from, when it ran from a git checkout
    suite: str | None = None  # whose graders gave the rewards (environment recipes)

    @classmethod
    def current(cls, *, dataset: dict[str, Any], recipe: str, params: dict[str, Any],
                base_model: str | None, seed: int, suite: str | None = None) -> Lineage:
        version, commit = code_version()
        return cls(dataset, recipe, params, base_model, seed, version, commit, suite)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ModelRecord:
    """`veteran-model.json`."""

    id: str
    function: str
    recipe: str
    kind: ModelKind
    base_model: str | None
    params: dict[str, Any]  # the parameters the recipe used, defaults included
    seed: int
    lineage: Lineage
    metrics: dict[str, float]
    seconds: float
    created_at: float
    status: Status = "ready"
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # suite -> latest gate
    history: str | None = HISTORY_FILE  # relative to the model folder
    version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lineage"] = self.lineage.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRecord:
        data = _upgrade(dict(data))
        lineage = Lineage(**data.pop("lineage"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(lineage=lineage, **{k: v for k, v in data.items() if k in names})


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Older record shapes, brought up to RECORD_VERSION (none yet: version 1 is the first)."""
    version = data.get("version", 1)
    if not isinstance(version, int) or version > RECORD_VERSION:
        raise VeteranError(f"model record version {version!r} is newer than this veteran "
                           f"reads ({RECORD_VERSION}); upgrade veteran")
    data["version"] = RECORD_VERSION
    return data


@dataclass(frozen=True)
class StagedModel:
    """A model being trained: its folder under `models/.staging/`, and the job that makes it."""

    id: str
    path: Path  # the recipe's output_dir
    job: dict[str, Any]  # job.json

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def dataset_dir(self) -> Path:
        return self.path / "dataset"

    def has_checkpoints(self) -> bool:
        """Whether the recipe saved anything to continue from (`--resume` would)."""
        return self.checkpoint_dir.is_dir() and any(self.checkpoint_dir.iterdir())


class Registry:
    """The models of one workspace (`WORKSPACE/models/`)."""

    def __init__(self, workspace: Path) -> None:
        self.root = workspace / MODELS_DIR
        self.staging = self.root / STAGING_DIR

    def path(self, model_id: str) -> Path:
        return self.root / model_id

    # -- making a model ----------------------------------------------------------------------

    def new_id(self, function: str, recipe: str) -> str:
        """`FUNCTION-RECIPE-xxxxxx`, shortened to a valid variant name, unused so far."""
        while True:
            suffix = f"-{recipe}-{secrets.token_hex(3)}"
            model_id = function[: 64 - len(suffix)] + suffix
            if not ID_PATTERN.match(model_id):
                raise VeteranError(f"cannot name a model {model_id!r}: function and recipe "
                                   "names must be letters, digits, . _ -")
            if not self.path(model_id).exists() and not (self.staging / model_id).exists():
                return model_id

    def plan(self, function: str, recipe: str, job: dict[str, Any]) -> StagedModel:
        """The staged model a new job will make: its id and folder, nothing written yet (so a
        job can be checked before anything is left behind; `make` writes it)."""
        model_id = self.new_id(function, recipe)
        return StagedModel(model_id, self.staging / model_id, job)

    def make(self, planned: StagedModel) -> StagedModel:
        """The staging folder of `planned`, holding `job.json` (and an empty `checkpoints/`)."""
        planned.checkpoint_dir.mkdir(parents=True)
        _write_json(planned.path / JOB_FILE, planned.job)
        return planned

    def stage(self, function: str, recipe: str, job: dict[str, Any]) -> StagedModel:
        """A new staging folder holding `job.json` (and an empty `checkpoints/`)."""
        return self.make(self.plan(function, recipe, job))

    def discard(self, staged: StagedModel) -> None:
        """Remove an unfinished job's staging folder (checkpoints included)."""
        shutil.rmtree(staged.path, ignore_errors=True)

    def staged(self, model_id: str) -> StagedModel:
        """The staged (unfinished) model `model_id`, to resume."""
        path = self.staging / model_id
        if not ID_PATTERN.match(model_id) or not (path / JOB_FILE).is_file():
            if (self.path(model_id) / RECORD_FILE).is_file():
                raise VeteranError(f"model {model_id!r} is already trained and registered")
            raise NotFound(f"no unfinished training {model_id!r} in {self.staging}")
        return StagedModel(model_id, path, _read_json(path / JOB_FILE))

    def list_staged(self, function: str | None = None) -> list[StagedModel]:
        if not self.staging.is_dir():
            return []
        out = []
        for path in sorted(self.staging.iterdir()):
            if (path / JOB_FILE).is_file():
                staged = StagedModel(path.name, path, _read_json(path / JOB_FILE))
                if function is None or staged.job.get("function") == function:
                    out.append(staged)
        return out

    def register(self, staged: StagedModel, result: Trained, lineage: Lineage) -> ModelRecord:
        """Write the record into the staged folder, drop its checkpoints, and move it into
        `models/MODEL_ID/` with one rename."""
        record = ModelRecord(
            id=staged.id, function=str(staged.job["function"]), recipe=lineage.recipe,
            kind=result.kind, base_model=result.base_model, params=dict(result.params),
            seed=lineage.seed, lineage=lineage, metrics=dict(result.metrics),
            seconds=result.seconds, created_at=time.time(),
        )
        with (staged.path / HISTORY_FILE).open("wb") as f:
            for step in result.history:
                f.write(orjson.dumps(step) + b"\n")
        shutil.rmtree(staged.checkpoint_dir, ignore_errors=True)
        _write_json(staged.path / RECORD_FILE, record.to_json())
        target = self.path(staged.id)
        if target.exists():
            raise VeteranError(f"{target} already exists; not replacing it")
        os.rename(staged.path, target)
        return record

    # -- reading -----------------------------------------------------------------------------

    def has(self, model_id: str) -> bool:
        """Whether `model_id` is a registered model of this workspace."""
        return bool(ID_PATTERN.match(model_id)) and (self.path(model_id) / RECORD_FILE).is_file()

    def get(self, model_id: str) -> ModelRecord:
        path = self.path(model_id) / RECORD_FILE
        if not ID_PATTERN.match(model_id) or not path.is_file():
            hint = " (still training: resume it with --resume)" if (
                self.staging / model_id / JOB_FILE).is_file() else ""
            raise NotFound(f"no model {model_id!r} in {self.root}{hint}")
        return ModelRecord.from_json(_read_json(path))

    def list(self, function: str | None = None) -> list[ModelRecord]:
        """Registered models, oldest first."""
        records = [ModelRecord.from_json(_read_json(p / RECORD_FILE)) for p in self._folders()]
        if function is not None:
            records = [r for r in records if r.function == function]
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def history(self, model_id: str) -> builtins.list[dict[str, float]]:
        record = self.get(model_id)
        if record.history is None:
            return []
        path = self.path(model_id) / record.history
        if not path.is_file():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def _folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if not path.name.startswith(".") and (path / RECORD_FILE).is_file():
                yield path

    # -- removing ----------------------------------------------------------------------------

    def users(self, model_id: str, config: Config) -> builtins.list[str]:
        """What still needs `model_id`: the variants of `config` served by it (as their model or
        their few-shot examples), the provider `paths` naming it, and the registered models
        trained on top of it."""
        found = []
        for fname, function in config.functions.items():
            for vname, variant in function.variants.items():
                if variant.model.partition("/")[2] == model_id:
                    found.append(f"functions.{fname}.variants.{vname} (model "
                                 f"{variant.model!r})")
                elif variant.fewshot is not None and variant.fewshot.model == model_id:
                    found.append(f"functions.{fname}.variants.{vname} (fewshot)")
        folder = self.path(model_id).resolve()
        for pname, provider in config.providers.items():
            paths = provider.model_dump().get("paths") or {}
            for key, value in paths.items():
                if key == model_id or Path(str(value)).expanduser().resolve() == folder:
                    found.append(f"providers.{pname}.paths.{key}")
        for record in self.list():
            if record.id != model_id and model_id in (record.base_model,
                                                      record.lineage.base_model):
                found.append(f"model {record.id} (trained on top of it)")
        return found

    def find(self, model_id: str) -> ModelRecord | StagedModel:
        """The registered model `model_id`, else the unfinished training of that id."""
        if self.has(model_id):
            return self.get(model_id)
        if ID_PATTERN.match(model_id) and (self.staging / model_id / JOB_FILE).is_file():
            return self.staged(model_id)
        raise NotFound(f"no model or unfinished training {model_id!r} in {self.root}")

    def remove(self, model_id: str, config: Config) -> StagedModel | ModelRecord:
        """Delete `model_id`'s folder: a registered model nothing uses (see `users`), or an
        unfinished job. Refuses, naming what uses it, while anything does; a promoted model is
        rolled back first (`veteran models rollback FUNCTION`)."""
        found = self.find(model_id)
        if isinstance(found, StagedModel):
            self.discard(found)
            return found
        record = found
        users = self.users(model_id, config)
        if users:
            standing = self.active_promotion(record.function)
            hints = []
            if standing is not None and standing.get("model") == model_id:
                hints.append(f"roll it back first: veteran models rollback {record.function}")
            elif any(not u.startswith("model ") for u in users):
                hints.append("take it out of veteran.toml first")
            if any(u.startswith("model ") for u in users):
                hints.append("remove the models trained on it first")
            raise VeteranError(f"model {model_id!r} is in use by {'; '.join(users)}; "
                               f"{'; '.join(hints)}")
        # Renamed out of the way first: a crash mid-delete leaves no half model in models/.
        doomed = self.root / f".removing-{model_id}-{secrets.token_hex(3)}"
        os.rename(self.path(model_id), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return record

    # -- after training ----------------------------------------------------------------------

    def set_scores(self, model_id: str, suite: str, scores: dict[str, Any]) -> ModelRecord:
        """Keep `scores` as the model's latest on `suite`."""
        record = self.get(model_id)
        record.scores[suite] = scores
        _write_json(self.path(model_id) / RECORD_FILE, record.to_json())
        return record

    def set_status(self, model_id: str, status: Status) -> ModelRecord:
        record = self.get(model_id)
        record.status = status
        _write_json(self.path(model_id) / RECORD_FILE, record.to_json())
        return record

    def log_promotion(self, entry: dict[str, Any]) -> None:
        """Append one promotion or rollback to `promotions.jsonl` (flushed to disk)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / PROMOTIONS_FILE).open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def promotions(self, function: str | None = None) -> builtins.list[dict[str, Any]]:
        """Promotions and rollbacks, oldest first."""
        path = self.root / PROMOTIONS_FILE
        if not path.is_file():
            return []
        entries = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        return [e for e in entries if function is None or e.get("function") == function]

    def active_promotion(self, function: str) -> dict[str, Any] | None:
        """The latest promotion of `function` not yet rolled back (each rollback undoes the
        latest one standing, so earlier ones are undone in reverse order)."""
        standing: builtins.list[dict[str, Any]] = []
        for entry in self.promotions(function):
            if entry.get("action") == "promote":
                standing.append(entry)
            elif entry.get("action") == "rollback" and standing:
                standing.pop()
        return standing[-1] if standing else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise VeteranError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise VeteranError(f"{path} does not hold a JSON object")
    return data
