"""`veteran serve` composed: one store, one gateway, and the background work that runs beside it.

This module is the one place that knows what a serving process runs: the gateway (its HTTP
app on uvicorn) and, as the gateway's background jobs, the provider switch poller, the live
config follower (gateway/live.py: SIGHUP, a changed file, versions published by other
processes) and the canaries (`[canaries]`), which run their suites through the live gateway:
no second `Gateway`, no second provider start, no second capture writer. Draining the spool is
the capture writer's own work (store/writer.py), for this process's captures and any a dead
process left behind.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from veteran.access import check_bind
from veteran.errors import VeteranError
from veteran.evals.canary import canary_loop
from veteran.gateway import (
    UVICORN_OPTIONS,
    Gateway,
    create_app,
    follow_config,
    poll_switches,
)
from veteran.store import Store
from veteran.workspace import Workspace

log = logging.getLogger("veteran")
SWITCH_INTERVAL = float(os.environ.get("VETERAN_SWITCH_INTERVAL", "0.0002"))


def build_gateway(workspace: Workspace) -> Gateway:
    """The serving gateway of `workspace`, with its background jobs (started with it)."""
    config = workspace.load_config()
    store = Store.open(
        workspace.database_url(config), sqlite_synchronous=config.capture.sqlite_synchronous
    )
    gateway = Gateway.for_workspace(config, store, workspace)
    compose(gateway, workspace)
    return gateway


def compose(gateway: Gateway, workspace: Workspace) -> None:
    """Give `gateway` the background work of a serving process."""
    gateway.keep("switches", poll_switches)
    gateway.keep("config", follow_config)
    if gateway.config.canaries.suites:

        async def canaries(live: Gateway) -> None:
            await canary_loop(live, workspace)

        gateway.keep("canaries", canaries)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything slow starts: a busy port is reported at
    once, not after a model has loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise VeteranError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(workspace: Workspace, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    gateway = build_gateway(workspace)
    server_config = gateway.config.server
    host = host or server_config.host
    port = port if port is not None else server_config.port
    try:
        check_bind(gateway.store, host)  # no open gateway beyond loopback
        for provider in gateway.providers.values():
            provider.check()  # cheap mistakes first: a missing API key variable
        sock = bind(host, port)
    except BaseException:
        gateway.store.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The capture writer thread shares the GIL with the event loop; CPython's default 5 ms
    # switch interval would let a batch hold the loop up for that long, and durable responses
    # wait on the writer: 0.2 ms measured best for both p99 and throughput (bench/RESULTS.md).
    sys.setswitchinterval(SWITCH_INTERVAL)
    options: dict[str, Any] = {**UVICORN_OPTIONS, "timeout_graceful_shutdown": 30}
    where = f"http://{f'[{host}]' if ':' in host else host}:{port}"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn says where it listens only when it bound the port
                log.info("veteran serving on %s (Ctrl+C to stop)", where)

    server = Server(uvicorn.Config(
        create_app(gateway, host=host), host=host, port=port, log_level="info", **options,
    ))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        gateway.store.close()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the startup failed (the reason is in the log)
