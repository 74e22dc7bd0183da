"""veteran's own HTTP/1.1 client: pooled keep-alive connections to one configured origin.

It sits low (beside the store) because more than providers call out: the OpenAI-compatible
embedder of `memory`, canary webhooks. Why it exists instead of aiohttp or httpx, with the
measurements, is in `client.py`'s docstring.
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
    "retry_after",
]
