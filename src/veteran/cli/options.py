"""Options every command shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(func: F) -> F:
    return click.option(
        "--workspace", "-w", "workspace", type=click.Path(file_okay=False), default=None,
        help="Workspace folder (default: $VETERAN_WORKSPACE, else the current folder).",
    )(func)
