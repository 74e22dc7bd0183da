"""Docs that cannot rot: every command, setting and endpoint is documented."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

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
        ModelInfo, RetrySettings, BreakerSettings,
        *(provider_class(kind).Settings for kind in kinds()),
    ]
    missing = {
        f"{model.__name__}.{name}"
        for model in models for name in _fields(model)
        if f"`{name}`" not in text and f"`[{name}" not in text  # keys, or tables like [server]
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
