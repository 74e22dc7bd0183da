"""Docs that cannot rot: every command, setting and endpoint is documented, and every one the
docs name exists."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from veteran.cli import cli
from veteran.cli.reference import render
from veteran.config import (
    CanariesConfig,
    CaptureConfig,
    Config,
    FunctionCacheConfig,
    FunctionConfig,
    FunctionMemoryConfig,
    MemoryConfig,
    MetricConfig,
    ServerConfig,
    TeamConfig,
    VariantConfig,
)
from veteran.gateway import Gateway, create_app
from veteran.policy_settings import (
    DictionaryConfig,
    FunctionRedactConfig,
    HandoffConfig,
    PatternConfig,
    PolicyRule,
    RedactConfig,
    RuleMatch,
)
from veteran.providers.base import BreakerSettings, ModelInfo, RetrySettings
from veteran.providers.registry import kinds, provider_class

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_cli_reference_is_current() -> None:
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == render(), (
        "docs/cli.md is out of date: run `make docs`"
    )


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_setting_is_documented() -> None:
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    models: list[type[BaseModel]] = [
        Config, ServerConfig, CaptureConfig, FunctionConfig, VariantConfig, MetricConfig,
        TeamConfig, MemoryConfig, FunctionMemoryConfig, FunctionCacheConfig, CanariesConfig,
        ModelInfo, RetrySettings, BreakerSettings, RedactConfig, FunctionRedactConfig,
        DictionaryConfig, PatternConfig, PolicyRule, RuleMatch, HandoffConfig,
        *(provider_class(kind).Settings for kind in kinds()),
    ]
    missing = {
        f"{model.__name__}.{name}"
        for model in models for name in _fields(model)
        if f"`{name}`" not in text and f"`[{name}" not in text  # keys, or tables like [server]
        and f"`[[{name}" not in text  # or arrays of tables like [[policies]]
    }
    assert not missing, f"undocumented settings: {sorted(missing)}"
    for kind in kinds():
        assert f'`kind = "{kind}"`' in text


def test_every_endpoint_is_documented(tmp_path: Path) -> None:
    from veteran.config import Config as C
    from veteran.store import Store

    store = Store.open(f"sqlite:///{tmp_path}/v.db")
    try:
        app = create_app(Gateway(C(), store))
        text = (DOCS / "api.md").read_text(encoding="utf-8")
        for path, methods in app.routes:
            for method in methods:
                assert f"`{method} {path}`" in text, f"{method} {path}"
    finally:
        store.close()


def test_readme_opens_with_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    first = "\n".join(readme.splitlines()[:8])
    assert "make run" in first and "make test" in first
    assert re.search(r"make run", readme)


# The reverse: what the docs (README.md and docs/*.md but the generated cli.md) name must exist:
# commands (`veteran eval run`, in code spans and code blocks), endpoints (`POST /v1/feedback`)
# and settings (config.md's key columns, `[tables]` and `dotted.keys` of veteran.toml, provider
# kinds, VETERAN_* variables). A thing not built yet may be named in a block (a paragraph, a list
# item, a table row, a heading, or one line of a code block) that says "planned (issue N)":
# nothing named in such a block is checked, so keep planned things in blocks of their own.

PLANNED = re.compile(r"planned \(issue \d+\)", re.IGNORECASE)
READ = ["README.md", *sorted(p.name for p in DOCS.glob("*.md") if p.name != "cli.md")]
CODE_SPAN = re.compile(r"`([^`]+)`")
ENDPOINT = re.compile(r"(?<![A-Za-z])(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_/{}.-]*)")
COMMAND = re.compile(r"(?<![\w.-])(?<!from )veteran +(.*)")  # not Python's `from veteran import`
WORD = re.compile(r"[a-z][a-z0-9-]*")
HEADER = re.compile(r"\bx-veteran-[a-z-]*[a-z]")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(kind, text) of each block: "code" for a line of a fenced block, else "prose" (a
    heading, a table row, a list item with its continuation lines, or a paragraph)."""
    blocks: list[tuple[str, str]] = []
    current: list[str] = []
    fenced = False

    def flush() -> None:
        if current:
            blocks.append(("prose", " ".join(line.strip() for line in current)))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            fenced = not fenced
        elif fenced:
            blocks.append(("code", line))
        elif not stripped:
            flush()
        elif stripped.startswith(("#", "|")):
            flush()
            blocks.append(("prose", stripped))
        elif re.match(r"(- |\* |\d+\. )", stripped):
            flush()
            current.append(stripped)
        else:
            current.append(stripped)
    flush()
    return blocks


def _named(pattern: re.Pattern[str], group: int = 0) -> tuple[set[tuple[str, str]], set[str]]:
    """Every (file, match) of `pattern` in code (spans, and lines of code blocks) outside
    planned blocks, and the matches found in planned blocks."""
    found: set[tuple[str, str]] = set()
    planned: set[str] = set()
    for name in READ:
        path = DOCS.parent / name if name == "README.md" else DOCS / name
        for kind, block in _blocks(path.read_text(encoding="utf-8")):
            pieces = [block] if kind == "code" else CODE_SPAN.findall(block)
            for piece in pieces:
                for match in pattern.finditer(piece):
                    if PLANNED.search(block):
                        planned.add(match.group(group))
                    else:
                        found.add((name, match.group(group)))
    return found, planned


def _command_paths(rest: str) -> list[list[str]]:
    """The command paths `veteran REST` names: words are read while they are subcommands of
    a group (`veteran eval run SUITE` names `eval run`); `a | b` or `a|b` names each."""
    words = rest.replace("|", " | ").split()
    named: list[list[str]] = []
    path: list[str] = []
    group: click.Command = cli
    i = 0
    while isinstance(group, click.Group) and i < len(words) and WORD.fullmatch(words[i]):
        choices = [words[i]]
        while i + 2 < len(words) and words[i + 1] == "|" and WORD.fullmatch(words[i + 2]):
            choices.append(words[i + 2])
            i += 2
        i += 1
        named += [[*path, choice] for choice in choices]
        sub = group.commands.get(choices[0])
        if len(choices) > 1 or sub is None:
            break
        path.append(choices[0])
        group = sub
    return named


def _command_exists(path: list[str]) -> bool:
    command: click.Command | None = cli
    for word in path:
        if not isinstance(command, click.Group):
            return False
        command = command.commands.get(word)
    return command is not None


def test_every_documented_command_exists() -> None:
    found, planned = _named(COMMAND, 1)
    checked = {(name, " ".join(path)) for name, rest in found for path in _command_paths(rest)}
    missing = sorted(f"{name}: veteran {path}" for name, path in checked
                     if not _command_exists(path.split()))
    assert not missing, f"documented commands that do not exist (or mark them planned): {missing}"
    # the matcher reads what the docs name: every command group, and most commands
    assert len({path for _, path in checked}) >= 40, sorted({path for _, path in checked})
    assert planned, "the planned commands (veteran reload, ...) are no longer found"


def test_every_documented_endpoint_exists(tmp_path: Path) -> None:
    from veteran.store import Store

    store = Store.open(f"sqlite:///{tmp_path}/v.db")
    try:
        app = create_app(Gateway(Config(), store))
        routes = {f"{method} {path}" for path, methods in app.routes for method in methods}
    finally:
        store.close()
    found, planned = _named(ENDPOINT)
    missing = sorted(f"{name}: {endpoint}" for name, endpoint in found if endpoint not in routes)
    assert not missing, f"documented endpoints that do not exist (or mark them planned): {missing}"
    assert {endpoint for _, endpoint in found} == routes  # each one named somewhere
    assert planned, "the planned endpoints (GET /v1/episodes/{id}, ...) are no longer found"
    gateway = "\n".join(p.read_text(encoding="utf-8")
                        for p in (DOCS.parent / "src/veteran/gateway").glob("*.py"))
    headers, _ = _named(HEADER)
    unknown = sorted(f"{name}: {header}" for name, header in headers
                     if f'"{header}"' not in gateway)
    assert not unknown, f"documented headers the gateway does not use: {unknown}"
    assert len({header for _, header in headers}) >= 6


TABLE = re.compile(r"^\[([a-z][\w.-]*)\]$")  # `[functions.NAME.memory]`
DOTTED = re.compile(r"^([a-z_]+(?:\.[A-Za-z0-9_-]+)+)(?: = .*)?$")  # `capture.durable = true`
FILE = re.compile(r"\.(py|md|toml|jsonl?|db)$")  # `server.py` is a file, not a key


def _optional(annotation: Any) -> Any:
    """X for `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _setting(dotted: str, model: Any = Config) -> Any:
    """What `dotted` (`functions.NAME.variants.VARIANT.fewshot`) names in `model`, or None:
    a word names a field, and any word is a key of a table of tables (`dict[str, Model]`)."""
    kind = model
    for word in dotted.split("."):
        kind = _optional(kind)
        if typing.get_origin(kind) is dict:
            kind = typing.get_args(kind)[1]
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and word in kind.model_fields:
            kind = kind.model_fields[word].annotation
        else:
            return None
    return _optional(kind)


def _section_model(heading: str) -> type[BaseModel] | None:
    """The settings a config.md heading documents: `[TABLE]`, a provider kind, or the top."""
    if heading.endswith("Top level"):
        return Config
    kind = re.search(r'`kind = "(\w+)"`', heading)
    if kind:
        return provider_class(kind.group(1)).Settings
    array = re.search(r"`\[\[([\w.]+)\]\]`", heading)  # an array of tables: [[policies]]
    if array:
        kind = _setting(array.group(1))
        model = typing.get_args(kind)[0] if typing.get_origin(kind) is list else None
        return model if isinstance(model, type) and issubclass(model, BaseModel) else None
    table = re.search(r"`\[([\w.]+)\]`", heading)
    model = _setting(table.group(1)) if table else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _config_keys() -> tuple[set[str], list[str]]:
    """The keys in config.md's key columns, and those that are not a field of the model of
    their section."""
    keys: set[str] = set()
    missing: list[str] = []
    model: type[BaseModel] | None = None
    header = False
    for _, block in _blocks((DOCS / "config.md").read_text(encoding="utf-8")):
        if block.startswith("#"):
            model, header = _section_model(block), False
        elif block.startswith("| key |"):
            header = True
        elif not block.startswith("|"):
            header = False
        elif header and not block.startswith("| ---"):
            for key in CODE_SPAN.findall(block.split("|")[1]):
                where = model.__name__ if model else "no section model"
                keys.add(f"{where}.{key}")
                if model is None or key not in model.model_fields:
                    missing.append(f"config.md: `{key}` ({where})")
    return keys, missing


def test_every_documented_setting_exists() -> None:
    """config.md's key columns are fields of their section's model; every veteran.toml table
    and dotted key any doc names is a path through the config models; every provider kind
    and environment variable named exists."""
    keys, missing = _config_keys()
    tables: set[str] = set()
    code = "\n".join(p.read_text(encoding="utf-8") for folder in ("src", "tests")
                     for p in (DOCS.parent / folder).rglob("*.py"))
    for name in READ:
        path = DOCS.parent / name if name == "README.md" else DOCS / name
        for kind, block in _blocks(path.read_text(encoding="utf-8")):
            if kind == "code" or PLANNED.search(block):
                continue
            for span in CODE_SPAN.findall(block):
                match = TABLE.match(span) or DOTTED.match(span)
                if (match is not None and match.group(1).split(".")[0] in Config.model_fields
                        and not FILE.search(span)):
                    tables.add(match.group(1))
                    if _setting(match.group(1)) is None:
                        missing.append(f"{name}: `{span}`")
                for provider in re.findall(r'^kind = "(\w+)"$', span):
                    if provider not in kinds():
                        missing.append(f"{name}: `{span}`")
                for variable in re.findall(r"\bVETERAN_[A-Z_]+\b", span):
                    if f'"{variable}"' not in code:
                        missing.append(f"{name}: `{variable}` (read nowhere)")
    assert not missing, f"documented settings that do not exist (or mark them planned): {missing}"
    assert len(keys) >= 80 and len(tables) >= 15, (sorted(keys), sorted(tables))


def test_every_grader_type_and_option_is_documented() -> None:
    """docs/evals.md has a `### `TYPE`` section per grader type (and none for a type that does
    not exist) naming each of the type's options in a code span; its suites section names every
    key of a suite and of its `[dataset]`."""
    from veteran.evals.suite import (
        GRADER_OPTIONS,
        DatasetConfig,
        SuiteConfig,
        grader_option_names,
    )

    text = (DOCS / "evals.md").read_text(encoding="utf-8")
    suites = text.split("## Suites:", 1)[1].split("\n## ", 1)[0]
    undocumented = [f"{model.__name__}.{name}" for model in (SuiteConfig, DatasetConfig)
                    for name in _fields(model)
                    if f"`{name}`" not in suites and f"`[{name}" not in suites]
    assert not undocumented, f"undocumented suite keys: {undocumented}"
    graders = text.split("## Graders and their options", 1)[1].split("\n## ", 1)[0]
    sections = {}
    for part in graders.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        kind = re.fullmatch(r"`(\w+)`.*", heading.strip())
        assert kind, f"a grader section's heading starts with its type in a code span: {heading}"
        sections[kind.group(1)] = body
    assert set(sections) == set(GRADER_OPTIONS), "one section per grader type, no other"
    missing = [f"{kind}.{option}" for kind in GRADER_OPTIONS
               for option in grader_option_names(kind) if f"`{option}`" not in sections[kind]]
    assert not missing, f"undocumented grader options: {missing}"
