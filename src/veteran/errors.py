"""One exception tree for veteran, mapped to HTTP in one place (`to_openai_error`).

```
VeteranError                      user-facing root: every message is safe to show
├── ConfigError                   veteran.toml is wrong; names the file and the key
├── StoreError                    the store cannot be opened or migrated
└── HTTPError                     carries an HTTP status and an OpenAI error `type`
    ├── BadRequest          400   the request is malformed or asks for something invalid
    │   └── Unsupported     400   the chosen provider cannot do what the request asks
    ├── NotFound            404   unknown model, trajectory or episode
    ├── PayloadTooLarge     413   body over the configured limit
    ├── UpstreamRejected    4xx   the provider refused the request itself (its status kept)
    ├── UpstreamError       502   the provider failed (connection, 5xx, bad answer)
    │   └── StreamInterrupted     the provider's stream broke part-way
    └── UpstreamTimeout     504   the provider did not answer in time
```

Messages never contain secrets: provider keys are scrubbed before an upstream message is
wrapped (see `providers.openai`).
"""

from __future__ import annotations

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


class HTTPError(VeteranError):
    status: int = 500
    type: str = "server_error"

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


class UpstreamRejected(HTTPError):
    """The provider answered 4xx about the request itself (e.g. context too long)."""

    type = "invalid_request_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, code="upstream_rejected")
        self.status = status


class UpstreamError(HTTPError):
    status = 502
    type = "upstream_error"

    def __init__(
        self, message: str, *, upstream_status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.upstream_status = upstream_status


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
