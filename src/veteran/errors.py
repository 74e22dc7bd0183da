"""One exception tree for veteran, mapped to HTTP in one place (`to_openai_error`).

```
VeteranError                      user-facing root: every message is safe to show
├── ConfigError                   veteran.toml is wrong; names the file and the key
├── StoreError                    the store cannot be opened or migrated
├── IngestError                   memory cannot take a file (names file:line) or a collection
└── HTTPError                     carries an HTTP status and an OpenAI error `type`
    ├── BadRequest          400   the request is malformed or asks for something invalid
    │   └── Unsupported     400   the chosen provider cannot do what the request asks
    ├── Unauthorized        401   no API key, or an unknown or revoked one
    ├── PermissionDenied    403   the key's role may not do this
    ├── NotFound            404   unknown model, trajectory or episode (or another team's)
    ├── PayloadTooLarge     413   body over the configured limit
    ├── RateLimited         429   a key or team is over a limit (`retry-after` header)
    ├── UpstreamRejected    4xx   the provider refused the request itself (its status kept)
    ├── UpstreamError       502   the provider failed (connection, 5xx, bad answer)
    │   └── StreamInterrupted     the provider's stream broke part-way
    └── UpstreamTimeout     504   the provider did not answer in time
```

Messages never contain secrets: provider keys are scrubbed before an upstream message is
wrapped (see `providers.openai`), and no message quotes an API key a client sent.
"""

from __future__ import annotations

import math
from typing import Any


class VeteranError(Exception):
    """Root of every error veteran raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(VeteranError):
    """The workspace configuration is invalid."""

    def __init__(self, path: str, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


class StoreError(VeteranError):
    """The store cannot be opened, migrated or written."""


class IngestError(VeteranError):
    """A file cannot be parsed into memory, or a collection refuses what is added to it."""


class HTTPError(VeteranError):
    status: int = 500
    type: str = "server_error"
    headers: dict[str, str] | None = None  # sent with the error response (e.g. retry-after)

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class BadRequest(HTTPError):
    status = 400
    type = "invalid_request_error"


class Unsupported(BadRequest):
    """The provider behind the chosen model cannot honour a request feature (e.g. tools)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code="unsupported")


class Unauthorized(HTTPError):
    status = 401
    type = "authentication_error"
    headers = {"www-authenticate": 'Bearer realm="veteran"'}

    def __init__(self, message: str, *, code: str = "invalid_api_key") -> None:
        super().__init__(message, code=code)


class PermissionDenied(HTTPError):
    status = 403
    type = "permission_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="forbidden")


class NotFound(HTTPError):
    status = 404
    type = "not_found_error"


class PayloadTooLarge(HTTPError):
    status = 413
    type = "invalid_request_error"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body is larger than the configured limit of {limit} bytes "
            "(server.max_body_bytes)",
            code="request_too_large",
        )


class RateLimited(HTTPError):
    """A key or team is over one of its limits; retry after `retry_after` seconds."""

    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"retry-after": str(self.retry_after)}


class UpstreamRejected(HTTPError):
    """The provider answered 4xx about the request itself (e.g. context too long), or 429."""

    type = "invalid_request_error"

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, code="upstream_rejected")
        self.status = status
        self.upstream_status = status
        self.retry_after = retry_after  # seconds, from the provider's Retry-After header
        if status == 429:
            self.type = "rate_limit_error"
            self.headers = _retry_after_header(retry_after)


class UpstreamError(HTTPError):
    """The provider failed: no connection, a 5xx, a broken answer, or our credentials refused.
    `upstream_status` is None when no HTTP answer came (connection refused, reset, ...)."""

    status = 502
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class ProviderUnavailable(UpstreamError):
    """No provider could be tried: switched off by an operator, or its circuit is open."""

    status = 503

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, code="provider_unavailable", retry_after=retry_after)
        self.headers = _retry_after_header(retry_after)


def _retry_after_header(seconds: float | None) -> dict[str, str] | None:
    """`retry-after` for the client, in whole seconds (at least 1), when there is a figure."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return {"retry-after": str(max(1, math.ceil(seconds)))}


class StreamInterrupted(UpstreamError):
    """The upstream stream ended before the answer was complete."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="stream_interrupted")


class UpstreamTimeout(HTTPError):
    status = 504
    type = "upstream_timeout"


def to_openai_error(exc: HTTPError) -> dict[str, Any]:
    """The OpenAI error JSON shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {
        "error": {
            "message": exc.message,
            "type": exc.type,
            "param": exc.param,
            "code": exc.code,
        }
    }
