"""Run the gateway on uvicorn (uvloop + httptools, no access log: see PERF-NOTES)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import uvicorn

from veteran.access import check_bind
from veteran.gateway.app import create_app
from veteran.gateway.core import Gateway
from veteran.gateway.protocol import GatewayHttpProtocol
from veteran.store import Store
from veteran.workspace import Workspace

log = logging.getLogger("veteran")
SWITCH_INTERVAL = float(os.environ.get("VETERAN_SWITCH_INTERVAL", "0.0002"))


def build_gateway(workspace: Workspace) -> Gateway:
    config = workspace.load_config()
    store = Store.open(
        workspace.database_url(config), sqlite_synchronous=config.capture.sqlite_synchronous
    )
    return Gateway(config, store, spool_dir=workspace.path / "spool",
                   memory_dir=workspace.path / "memory", workspace=workspace)


# How uvicorn runs the gateway, in `veteran serve` and in the tests alike.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": GatewayHttpProtocol,
    "access_log": False,
    "proxy_headers": False,  # no request header may change what the gateway believes
    "server_header": False,
}


def serve(workspace: Workspace, *, host: str | None = None, port: int | None = None) -> None:
    gateway = build_gateway(workspace)
    server_config = gateway.config.server
    host = host or server_config.host
    try:
        check_bind(gateway.store, host)  # no open gateway beyond loopback
    except BaseException:
        gateway.store.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The capture writer thread shares the GIL with the event loop; CPython's default 5 ms
    # switch interval would let a batch hold the loop up for that long, and durable responses
    # wait on the writer: 0.2 ms measured best for both p99 and throughput (bench/RESULTS.md).
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(
        create_app(gateway, host=host),
        host=host,
        port=port if port is not None else server_config.port,
        log_level="info",
        **UVICORN_OPTIONS,
        timeout_graceful_shutdown=30,
    )
    gateway.store.close()
