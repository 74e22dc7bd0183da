"""veteran's own HTTP/1.1 client: pooled keep-alive connections to one configured origin.

It sits low (beside the store) because more than providers call out: the OpenAI-compatible
embedder of `memory`, and the alert webhooks of canaries and the hand-off watch
(`webhook.py`). Why it exists instead of aiohttp or httpx, with the measurements, is in
`client.py`'s docstring.
"""

from veteran.http.client import (
    ConnectError,
    ConnectionClosed,
    ConnectionPool,
    HTTPClientError,
    ProtocolError,
    ReadTimeout,
    RequestContext,
    Response,
    Timeouts,
    TotalTimeout,
    header_block,
    retry_after,
)
from veteran.http.webhook import post_webhook

__all__ = [
    "ConnectError",
    "ConnectionClosed",
    "ConnectionPool",
    "HTTPClientError",
    "ProtocolError",
    "ReadTimeout",
    "RequestContext",
    "Response",
    "Timeouts",
    "TotalTimeout",
    "header_block",
    "post_webhook",
    "retry_after",
]
