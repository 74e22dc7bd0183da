"""Writing a curated dataset: a folder with one file per split, `manifest.json` beside them.

Nothing is ever half-written: the export goes to a hidden sibling folder that is renamed into
place once complete (an existing folder, with `overwrite`, is moved aside first and removed
after). The manifest's `content_hash` is a sha256 over every written file, in file-name order,
each preceded by its name and size, so equal data gives an equal hash whenever it is exported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from veteran import __version__
from veteran.datasets.curate import Curated
from veteran.datasets.errors import ExportError
from veteran.datasets.formats import FORMATS, PREFERENCE_FORMATS, WRITERS
from veteran.datasets.types import MANIFEST_VERSION, Manifest

MANIFEST = "manifest.json"
GRADER = "grader.json"


def export(curated: Curated, fmt: str, out_dir: Path, *, grader: dict[str, Any] | None = None,
           overwrite: bool = False) -> Manifest:
    """Write `curated` as `fmt` into `out_dir` (created; an existing non-empty folder only with
    `overwrite`) and return the manifest also written there as `manifest.json`. `grader` (an
    OpenAI grader, see `evals.graders.to_openai_grader`) goes to `grader.json` with
    `openai-rft`."""
    out_dir = Path(out_dir)
    if fmt not in WRITERS:
        raise ExportError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if fmt in PREFERENCE_FORMATS and curated.kind != "preference":
        raise ExportError(f"format {fmt!r} needs preference pairs: curate kind 'preference', "
                          f"not {curated.kind!r}")
    if not any(curated.splits.values()):
        raise ExportError(f"no examples to export for {curated.function!r}")
    if grader is not None and fmt != "openai-rft":
        raise ExportError(f"a grader is written only with 'openai-rft', not {fmt!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ExportError(f"{out_dir} is not empty; choose another folder or overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.tmp"
    work.mkdir()
    try:
        WRITERS[fmt](work, curated.splits)
        if grader is not None:
            (work / GRADER).write_bytes(orjson.dumps(grader, option=orjson.OPT_INDENT_2))
        files = _files(work)
        manifest = Manifest(
            function=curated.function, format=fmt, filters=curated.settings(),
            counts=dict(curated.counts), content_hash=content_hash(work, files), files=files,
            created_at=time.time(), code_version=__version__, seed=curated.seed,
            trajectories=trajectory_ids(curated),
        )
        write_manifest(work, manifest)
        _move_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def trajectory_ids(curated: Curated) -> dict[str, list[str]]:
    """Per split, the trajectories its rows were made from: each row's own, and for a
    preference pair the rejected answer's too (a model learns from both)."""
    out: dict[str, list[str]] = {}
    for name, examples in curated.splits.items():
        ids: dict[str, None] = {}  # ordered, without repeats
        for e in examples:
            ids[e.id] = None
            rejected = e.metadata.get("rejected_id") if e.rejected is not None else None
            if isinstance(rejected, str):
                ids[rejected] = None
        out[name] = list(ids)
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST)


def content_hash(folder: Path, files: list[str]) -> str:
    """`sha256:` + the hash over `files` (relative to `folder`), each as name, size, bytes."""
    h = hashlib.sha256()
    for name in sorted(files):
        path = folder / name
        h.update(f"{name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _move_into_place(work: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.rename(work, out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.old"
    os.rename(out_dir, old)
    try:
        os.rename(work, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def manifest_to_json(manifest: Manifest) -> dict[str, Any]:
    """The manifest as JSON-ready data (what a model's lineage keeps)."""
    return dataclasses.asdict(manifest)


def manifest_from_json(data: dict[str, Any]) -> Manifest:
    """A manifest from `manifest_to_json`'s shape, upgraded from older versions (version 1
    recorded no trajectory ids: `trajectories` is None)."""
    version = data.get("version", 1)
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ExportError(f"manifest version {version!r} is newer than this veteran reads "
                          f"({MANIFEST_VERSION}); upgrade veteran")
    if version < 2:
        data = {**data, "trajectories": None, "version": MANIFEST_VERSION}
    known = {f.name for f in dataclasses.fields(Manifest)}
    try:
        return Manifest(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ExportError(f"not a manifest: {exc}") from None


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = Path(folder) / MANIFEST
    path.write_bytes(orjson.dumps(manifest_to_json(manifest), option=orjson.OPT_INDENT_2))
    return path


def read_manifest(path: Path) -> Manifest:
    """The manifest of an export folder (or the `manifest.json` file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ExportError(f"{path}: no such manifest") from None
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: a manifest is a JSON object")
    return manifest_from_json(data)
