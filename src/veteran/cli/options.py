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


# Groups and commands that tests also invoke on their own (not through `veteran`) carry the
# root's help options themselves: click caches a command's help option on first use, and
# `docs/cli.md` must come out the same whichever way a command was first called.
CONTEXT = {"help_option_names": ["-h", "--help"]}
