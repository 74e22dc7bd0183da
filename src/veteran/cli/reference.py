"""Render the CLI reference (docs/cli.md) from the commands themselves, so it cannot rot.

    python -m veteran.cli.reference > docs/cli.md     (or: make docs)
"""

from __future__ import annotations

import click

HEADER = """# CLI reference

Generated from the commands' own `--help` by `make docs`; a test fails when it is out of date.
Every command takes `--workspace DIR` (default: `$VETERAN_WORKSPACE`, else the current folder),
except `init`, which takes the folder to create.
"""


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(command.commands[name], [*path, name])
    return found


def render() -> str:
    from veteran.cli import cli

    parts = [HEADER]
    for path, command in _walk(cli, ["veteran"]):
        ctx = click.Context(command, info_name=" ".join(path), terminal_width=100,
                            max_content_width=100, **cli.context_settings)
        parts.append(f"## `{' '.join(path)}`\n\n```\n{command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
