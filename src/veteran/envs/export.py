"""Export an environment as an installable `verifiers` environment package.

The package bundles the tasks (`tasks.jsonl`, one veteran sample a line) and the graders'
suite tables (`environment.json`); at load time the graders are rebuilt with
`grader_from_config`, the evaluation code itself, so a reward in training is the score an
evaluation gives. The verifiers side (taskset, task, reward) lives in `veteran.envs.taskset`,
which the package imports: the package holds data, not a copy of the code.

    OUT/
      pyproject.toml            setuptools; depends on veteran and verifiers
      README.md
      PACKAGE/__init__.py       Taskset, Harness, load_environment()
      PACKAGE/environment.json  {"version", "name", "system", "weights", "graders", ...}
      PACKAGE/tasks.jsonl
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import orjson

from veteran.config import Config
from veteran.envs.environment import EnvError, Environment
from veteran.evals.graders import grader_from_config
from veteran.evals.types import Complete, Sample

BUNDLE_VERSION = 1
BUNDLE_FILE = "environment.json"
TASKS_FILE = "tasks.jsonl"
PACKAGE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=70"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "{version}"
description = {description}
requires-python = ">=3.11"
dependencies = ["veteran", "verifiers>=0.4,<0.5"]

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["{bundle}", "{tasks}"]
"""

MODULE = '''\
"""veteran environment {name!r}: {count} tasks, rewarded by the graders {graders}.

Written by `veteran env export` (veteran {veteran}). verifiers loads it by its id, the package
name (`vf eval {package}`), or in Python:

    import {package}
    env = {package}.load_environment()
"""

from typing import Any, Literal

from veteran.envs.taskset import VeteranHarness as Harness
from veteran.envs.taskset import VeteranTaskset, load_bundle_environment


class Taskset(VeteranTaskset):
    BUNDLE = __name__


def load_environment(**config: Any) -> Any:
    """A verifiers environment over this package's tasks; `config` is merged into its
    `SingleAgentEnvConfig` (e.g. `judge_base_url=` for LLM-judge graders)."""
    return load_bundle_environment(__name__, **config)


__all__ = ["Harness", "Taskset", "load_environment"]
'''

README = """\
# {dist}

A reinforcement-learning environment exported by `veteran env export`: {count} tasks of
`{name}`, rewarded by the graders {graders} (weights {weights}), the same grader code that
scores veteran's evaluations.

    pip install ./{out}
    vf eval {package}               # verifiers, by taskset id

Graders of type `python` import their function by name: its module must be importable where
the environment runs. LLM-judge graders call a model: give `judge_base_url` (an
OpenAI-compatible endpoint, such as a veteran gateway) to `load_environment`, or
`--env.taskset.task.judge-base-url` to `vf eval`; the key is read from `$VETERAN_API_KEY`.
"""


def sample_json(sample: Sample) -> dict[str, Any]:
    return asdict(sample)


def write_bundle(env: Environment, folder: Path) -> None:
    """`environment.json` and `tasks.jsonl` in `folder`."""
    if env.specs is None:
        raise EnvError(f"environment {env.name!r} has no grader specs to export: build it "
                       "with Environment.from_suite, or pass specs=")
    header = {"version": BUNDLE_VERSION, "name": env.name, "system": env.system,
              "weights": env.weights, "graders": env.specs, "tasks": TASKS_FILE,
              "count": len(env.tasks), "created_at": time.time(),
              "veteran": _veteran_version()}
    (folder / BUNDLE_FILE).write_bytes(orjson.dumps(header, option=orjson.OPT_INDENT_2))
    with (folder / TASKS_FILE).open("wb") as f:
        for task in env.tasks:
            f.write(orjson.dumps(sample_json(task)) + b"\n")


def read_bundle(folder: Path, *, complete: Complete | None = None) -> Environment:
    """The environment a bundle holds, its graders rebuilt from their suite tables."""
    try:
        header = orjson.loads((folder / BUNDLE_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise EnvError(f"{folder / BUNDLE_FILE}: cannot read the environment: {exc}") from None
    if header.get("version") != BUNDLE_VERSION:
        raise EnvError(f"{folder / BUNDLE_FILE}: format version {header.get('version')!r}; "
                       f"this veteran reads version {BUNDLE_VERSION}")
    tasks = []
    with (folder / header.get("tasks", TASKS_FILE)).open("rb") as f:
        for line in f:
            if line.strip():
                tasks.append(Sample(**orjson.loads(line)))
    specs: dict[str, dict[str, Any]] = header["graders"]
    graders = {name: grader_from_config(name, spec, complete=complete)
               for name, spec in specs.items()}
    return Environment(header["name"], tasks, graders, weights=header.get("weights"),
                       system=header.get("system"), specs=specs)


def export_verifiers(env: Environment, out_dir: Path, *, package: str,
                     version: str = "0.1.0") -> Path:
    """Write `env` as an installable verifiers environment package in `out_dir` (a new or
    empty folder); returns the package's folder. Nothing is left behind on failure."""
    if not PACKAGE_PATTERN.match(package):
        raise EnvError(f"package name {package!r} must be a lower-case Python identifier "
                       "(letters, digits, _)")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise EnvError(f"{out_dir} exists and is not an empty folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_package(env, staging, package, version, out_dir.name)
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / package


def _write_package(env: Environment, root: Path, package: str, version: str,
                   out: str) -> None:
    folder = root / package
    folder.mkdir()
    write_bundle(env, folder)
    graders = ", ".join(env.graders)
    dist = package.replace("_", "-")
    description = orjson.dumps(f"veteran environment {env.name}: {len(env.tasks)} tasks, "
                               f"graders {graders}").decode()
    (root / "pyproject.toml").write_text(PYPROJECT.format(
        dist=dist, version=version, description=description, package=package,
        bundle=BUNDLE_FILE, tasks=TASKS_FILE), encoding="utf-8")
    (folder / "__init__.py").write_text(MODULE.format(
        name=env.name, count=len(env.tasks), graders=graders, veteran=_veteran_version(),
        package=package), encoding="utf-8")
    (root / "README.md").write_text(README.format(
        dist=dist, count=len(env.tasks), name=env.name, graders=graders,
        weights=env.weights, out=out, package=package), encoding="utf-8")


def _veteran_version() -> str:
    from veteran import __version__

    return __version__


async def _not_at_export(body: dict[str, Any]) -> dict[str, Any]:
    raise EnvError("exporting an environment calls no model")


def export_suite(workspace: Path, config: Config, suite: str, out_dir: Path, *,
                 function: str, package: str | None = None,
                 source: Literal["suite", "store"] = "suite",
                 weights: dict[str, float] | None = None, include_evals: bool = False
                 ) -> tuple[Environment, Path]:
    """`veteran env export`: the environment of `function` on `suite`, written as a verifiers
    package (default name `FUNCTION_SUITE`). LLM judges are exported as specs: the package
    calls their model when it is loaded with a `judge_base_url`. Tasks from the store leave
    evaluation calls out unless `include_evals`."""
    env = Environment.from_suite(workspace, config, suite, source=source, function=function,
                                 complete=_not_at_export, weights=weights,
                                 include_evals=include_evals)
    if package is None:
        package = re.sub(r"[^a-z0-9_]+", "_", f"{function}_{Path(suite).stem}".lower())
        package = package if package[:1].isalpha() else f"env_{package}"
    return env, export_verifiers(env, out_dir, package=package)
