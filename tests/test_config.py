"""veteran.toml: the documented shape loads; every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from veteran.config import load_config
from veteran.errors import ConfigError
from veteran.workspace import Workspace, default_config_text, init_workspace

ISSUE_EXAMPLE = """
[providers.up]
kind = "openai"
base_url = "http://127.0.0.1:9100/v1"
api_key_env = "UP_API_KEY"

[functions.triage]
system = "You route support tickets."

[functions.triage.variants.big]
model = "up/gpt-x"
weight = 1.0

[metrics.resolved]
type = "boolean"
level = "trajectory"
optimize = "max"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "veteran.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_shape_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ISSUE_EXAMPLE))
    variant = config.functions["triage"].variants["big"]
    assert (variant.provider, variant.provider_model) == ("up", "gpt-x")
    assert config.metrics["resolved"].type == "boolean"
    assert config.server.port == 4000
    assert config.capture.durable is True


def test_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "ws")
    config = workspace.load_config()
    assert config.functions["chat"].variants["smollm2"].model == "local/smollm2-135m-instruct"
    assert workspace.database_url(config) == f"sqlite:///{tmp_path / 'ws' / 'veteran.db'}"
    assert "#" in default_config_text()  # commented
    with pytest.raises(Exception, match="already exists"):
        init_workspace(tmp_path / "ws")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[providers.up]\nkind = 'nope'\n", "providers.up.kind", "unknown provider kind"),
        ("[providers.up]\nbase_url = 'http://x'\n", "providers.up.kind", "required"),
        ("[providers.up]\nkind = 'openai'\n", "providers.up.base_url", "required"),
        (
            "[providers.up]\nkind = 'openai'\nbase_url = 'ftp://x'\n",
            "providers.up.base_url",
            "http",
        ),
        (
            "[providers.up]\nkind = 'openai'\nbase_url = 'http://x'\ncolour = 1\n",
            "providers.up.colour",
            "unknown key",
        ),
        (
            "[functions.f.variants.a]\nmodel = 'up/x'\n",
            "functions.f.variants.a.model",
            "unknown provider 'up'",
        ),
        ("[functions.f.variants.a]\nmodel = 'no-slash'\n", "functions.f.variants.a.model", ""),
        (
            "[providers.m]\nkind = 'mock'\n[functions.f.variants.a]\nmodel = 'm/x'\nweight = -1\n",
            "functions.f.variants.a.weight",
            "",
        ),
        (
            "[providers.m]\nkind = 'mock'\n[functions.f.variants.a]\nmodel = 'm/x'\nweight = 0\n",
            "functions.f.variants",
            "weight above 0",
        ),
        ("[functions.f]\nsystem = 'x'\n", "functions.f.variants", ""),
        ("[metrics.m]\ntype = 'stars'\n", "metrics.m.type", ""),
        ("[metrics.m]\ntype = 'boolean'\nlevel = 'session'\n", "metrics.m.level", ""),
        ("[metrics.m]\ntype = 'boolean'\nlabels = ['a']\n", "metrics.m.labels", "label"),
        ("[server]\nport = 70000\n", "server.port", ""),
        (
            "[providers.local]\nkind = 'local'\n[functions.f.variants.a]\nmodel = 'local/gpt-9'\n",
            "functions.f.variants.a.model",
            "no model 'gpt-9'",
        ),
        ("[functions.'a/b'.variants.x]\nmodel = 'up/x'\n", "functions.a/b", "must match"),
        ("colour = 'red'\n", "colour", "unknown key"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[providers\n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_workspace_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="veteran init"):
        Workspace(tmp_path).load_config()


def test_database_url_from_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write(tmp_path, 'database_url = "sqlite:///a.db"\n'))
    assert Workspace(tmp_path).database_url(config) == "sqlite:///a.db"
    monkeypatch.setenv("VETERAN_DATABASE_URL", "postgresql://x/y")
    assert Workspace(tmp_path).database_url(config) == "postgresql://x/y"
