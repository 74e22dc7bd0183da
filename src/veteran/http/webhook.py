"""Alert webhooks: one JSON POST to an operator's URL, whose failure never breaks the caller.

Canaries (`evals/canary.py`) and the vendor hand-off watch (`policies/handoff.py`) alert this
way. It lives here, below both, so a low room can alert without importing evals. Each POST
opens its own one-connection pool and closes it: alerts are rare, and a kept-alive
connection to a third party's server is not worth holding for them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import orjson

from veteran.http.client import ConnectionPool, Timeouts, header_block

WEBHOOK_TIMEOUT = 10.0  # seconds, connect and answer together
_log = logging.getLogger("veteran.http")


async def post_webhook(url: str, payload: dict[str, Any], *, timeout: float = WEBHOOK_TIMEOUT,
                       log: logging.Logger = _log, what: str = "webhook",
                       user_agent: str = "veteran") -> bool:
    """POST `payload` as JSON; True on a 2xx answer. Failures are logged as WARNINGs on `log`,
    named `what` ("canary webhook to HOST failed: ConnectError"), with the host and the reason
    only: the URL may carry a token. Never raises."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = orjson.dumps(payload)
    try:
        headers = header_block({"Content-Type": "application/json", "User-Agent": user_agent,
                                "Connection": "close"})
        pool = ConnectionPool(f"{parts.scheme}://{parts.hostname}"
                              + (f":{parts.port}" if parts.port else ""), max_connections=1,
                              timeouts=Timeouts(connect=timeout, read=timeout, total=timeout))
    except ValueError:
        log.warning("%s is not an http(s) URL; alert not sent", what)
        return False
    try:
        async with pool.request("POST", target, headers, body) as response:
            await response.read()
            status = response.status
    except Exception as exc:
        log.warning("%s to %s failed: %s", what, parts.hostname, type(exc).__name__)
        return False
    finally:
        await pool.close()
    if not 200 <= status < 300:
        log.warning("%s to %s answered HTTP %d", what, parts.hostname, status)
        return False
    return True
