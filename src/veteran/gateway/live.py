"""Live config: every running gateway follows a change to veteran.toml without a restart.

How a change travels:

1. Someone changes veteran.toml: `veteran models promote` / `rollback`, `veteran drill --apply`,
   or an edit by hand.
2. It is *published*: the text is validated, then stored as the next version in the store
   (`config_versions`). The commands that edit the file publish themselves; `veteran reload`
   publishes an edit made by hand; a serving gateway publishes on SIGHUP, and when it sees its
   file change (it looks once a second). A file that does not validate is refused with its
   error (logged by a gateway) and nothing changes.
3. Every gateway on the store polls the latest version once a second (`follow_config`), as it
   polls provider switches, validates it itself, and swaps (`Gateway.reload`): calls in flight
   finish on what they started with; the next call sees the whole new config.

A gateway that starts publishes its own file when it differs from the latest version: the last
config published wins, wherever it came from.

What applies live: providers (unchanged ones are kept, loaded models and breaker counts
included; a changed one takes its new settings in place where it can, else a new one starts
before the swap and the old one is closed once its calls are done), functions and their
variants, weights, fallbacks, memory and cache settings, fewshot models, metrics and team
limits. What needs a restart (`RESTART_ONLY`): the address served, capture, the database, the
memory embedder and the canary schedule; a reload that changes them says so in the log and
keeps the values it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from veteran.config import Config, parse_config_text
from veteran.errors import VeteranError
from veteran.providers.base import Provider
from veteran.store import Store
from veteran.store.configs import ConfigVersion, ConfigVersions, config_digest

if TYPE_CHECKING:
    from veteran.gateway.core import Gateway
    from veteran.workspace import Workspace

log = logging.getLogger("veteran.gateway")

RESTART_ONLY = ("database_url", "server", "capture", "memory", "canaries")
FOLLOW_INTERVAL = 1.0  # seconds: how often a gateway looks at the store and its file
RETIRE_AFTER = 600.0  # seconds a replaced provider stays open for the calls it was serving


def effective(current: Config, new: Config) -> tuple[Config, list[str]]:
    """`new` with the settings that need a restart kept as in `current`, and a note for each
    of those that `new` changes."""
    kept = {name: getattr(current, name) for name in RESTART_ONLY}
    notes = [f"[{name}] changed: it applies after a restart" if name != "database_url"
             else "database_url changed: it applies after a restart"
             for name, value in kept.items() if getattr(new, name) != value]
    return new.model_copy(update=kept), notes


async def retire(provider: Provider, after: float = RETIRE_AFTER) -> None:
    """Close a provider a reload replaced, once the calls it was serving are done (they are
    bounded by its total timeout; `after` when it has none)."""
    total = getattr(provider.settings, "total_timeout", None)
    try:
        await asyncio.sleep(float(total) + 1.0 if isinstance(total, (int, float)) else after)
    finally:
        try:
            await provider.close()
        except Exception:
            log.exception("closing replaced provider %s failed", provider.name)


def read_checked(path: Path, folder: Path) -> tuple[str, Config]:
    """The text of a veteran.toml and the config it validates to (`ConfigError` if it does
    not)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VeteranError(f"{path} not found") from None
    return text, parse_config_text(text, str(path), folder=folder)


def publish(workspace: Workspace, store: Store, source: str) -> tuple[ConfigVersion, bool]:
    """Validate the workspace's veteran.toml and make it the config every running gateway on
    `store` follows: (the version, whether it is new; publishing the latest again adds
    nothing). Raises `ConfigError` for a file that does not validate: nothing is published."""
    text, _ = read_checked(workspace.config_path, workspace.path)
    return ConfigVersions(store.engine).publish(text, source)


class Follower:
    """The state of `follow_config` in one gateway: the file it watches, the versions it saw."""

    def __init__(self, gateway: Gateway, workspace: Workspace) -> None:
        self.gateway = gateway
        self.workspace = workspace
        self.versions = ConfigVersions(gateway.store.engine)
        self.seen_file: tuple[float, int] | None = None  # (mtime, size) of the file last read
        self.seen_head: tuple[int, str] | None = None  # the latest version last looked at
        self.hangup = asyncio.Event()

    def stat(self) -> tuple[float, int] | None:
        try:
            st = self.workspace.config_path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    async def publish_file(self, source: str) -> None:
        """Publish the workspace's file if it validates; else log why and keep serving."""
        self.seen_file = self.stat()
        try:
            version, new = await asyncio.to_thread(publish, self.workspace, self.gateway.store,
                                                   source)
        except VeteranError as exc:
            log.error("config not reloaded: %s (the running config keeps serving)", exc)
            return
        if new:
            log.info("published config version %d (%s)", version.version, source)

    async def follow(self) -> None:
        """Swap to the latest published version when it is not what this gateway serves."""
        head = await asyncio.to_thread(self.versions.head)
        if head is None or head == self.seen_head:
            return
        self.seen_head = head
        version, digest = head
        if digest == self.gateway.digest:
            return
        found = await asyncio.to_thread(self.versions.get, version)
        if found is None:
            return
        shown = f"{self.workspace.config_path} (version {version})"
        try:
            config = parse_config_text(found.text, shown, folder=self.workspace.path)
            notes = await self.gateway.reload(config, digest)
        except VeteranError as exc:
            log.error("config version %d not applied: %s (the running config keeps serving)",
                      version, exc)
            return
        except Exception:
            log.exception("config version %d not applied (the running config keeps serving)",
                          version)
            return
        log.info("now serving config version %d (%s)", version, found.source)
        for note in notes:
            log.log(logging.WARNING if "restart" in note else logging.INFO, "reload: %s", note)


async def follow_config(gateway: Gateway, interval: float = FOLLOW_INTERVAL) -> None:
    """A background job of a serving gateway: publish its file when it changes or on SIGHUP,
    and swap to the latest published config."""
    workspace = gateway.workspace
    if workspace is None:
        raise VeteranError("following the config needs the gateway's workspace")
    follower = Follower(gateway, workspace)
    text = await asyncio.to_thread(workspace.config_path.read_text, encoding="utf-8")
    gateway.digest = config_digest(text)
    await follower.publish_file("serve")
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, follower.hangup.set)  # main thread, POSIX only
    failing = False
    try:
        while True:
            with contextlib.suppress(TimeoutError):  # no task of its own, unlike wait_for
                async with asyncio.timeout(interval):
                    await follower.hangup.wait()
            try:
                if follower.hangup.is_set():
                    follower.hangup.clear()
                    log.info("SIGHUP: reloading %s", workspace.config_path)
                    await follower.publish_file("sighup")
                elif follower.stat() != follower.seen_file:
                    await follower.publish_file("file")
                await follower.follow()
            except Exception as exc:
                if not failing:
                    log.warning("following the config failed (%s); retrying",
                                type(exc).__name__)
                failing = True
            else:
                failing = False
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)
