"""How uvicorn runs the gateway's app (uvloop + httptools, no access log: see PERF-NOTES), in
`veteran serve` (composed by `veteran.serving`) and in the tests alike."""

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
