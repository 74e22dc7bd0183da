"""How uvicorn runs the gateway's app, in `veteran serve` (composed by `veteran.serving`) and in
the tests alike: uvloop + httptools and no access log, each measured on the hot path
(docs/design.md, "The server and the framework, measured first")."""

from __future__ import annotations

from typing import Any

from veteran.gateway.protocol import GatewayHttpProtocol

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": GatewayHttpProtocol,
    "access_log": False,
    "proxy_headers": False,  # no request header may change what the gateway believes
    "server_header": False,
}
