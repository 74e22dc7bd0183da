"""Where things live: a workspace folder holds `veteran.toml` and the embedded store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from veteran.config import Config, load_config
from veteran.errors import VeteranError

CONFIG_NAME = "veteran.toml"
DB_NAME = "veteran.db"
WORKSPACE_ENV = "VETERAN_WORKSPACE"
DATABASE_ENV = "VETERAN_DATABASE_URL"


@dataclass(frozen=True)
class Workspace:
    path: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> Workspace:
        """`path`, else `$VETERAN_WORKSPACE`, else the current folder."""
        chosen = path or os.environ.get(WORKSPACE_ENV) or "."
        return cls(Path(chosen).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    def load_config(self) -> Config:
        if not self.config_path.exists():
            raise VeteranError(
                f"{self.path} is not a veteran workspace (no {CONFIG_NAME}); "
                f"create one with `veteran init {self.path}`"
            )
        return load_config(self.config_path)

    def database_url(self, config: Config) -> str:
        """`$VETERAN_DATABASE_URL`, else `database_url` in the config, else SQLite in the folder."""
        url = os.environ.get(DATABASE_ENV) or config.database_url
        return url or f"sqlite:///{self.path / DB_NAME}"


def default_config_text() -> str:
    return (files("veteran") / "templates" / CONFIG_NAME).read_text(encoding="utf-8")


def init_workspace(path: str | Path) -> Workspace:
    """Create the folder and a commented `veteran.toml`; never overwrites an existing one."""
    workspace = Workspace(Path(path).expanduser().resolve())
    if workspace.config_path.exists():
        raise VeteranError(f"{workspace.config_path} already exists; not overwriting it")
    workspace.path.mkdir(parents=True, exist_ok=True)
    workspace.config_path.write_text(default_config_text(), encoding="utf-8")
    return workspace
