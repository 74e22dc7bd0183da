"""One exception tree for veteran, mapped to HTTP in one place (`to_openai_error`).

Every exception veteran defines is defined here, whatever room raises it, so that one `except
VeteranError` catches all of them and this drawing is the whole list (`tests/test_errors_tree.py`
holds it equal to the classes). The rooms re-export the ones they raise (`veteran.evals.Skip`,
`veteran.datasets.DataError`, ...). Only `veteran.testing`'s fakes raise their own: they play a
failing server, not veteran.

```
VeteranError                      user-facing root: every message is safe to show
├── ConfigError                   veteran.toml is wrong; names the file and the key
├── StoreError                    the store cannot be opened or migrated
├── ImportRefused                 a history file cannot be imported; names the line, imports none
├── IngestError                   memory cannot take a file (names file:line) or a collection
├── HTTPClientError               the upstream HTTP client failed (providers wrap it: Upstream*)
│   ├── ConnectError              no connection to the upstream
│   ├── ReadTimeout               the upstream fell silent longer than the read timeout
│   ├── TotalTimeout              the exchange took longer than the total timeout
│   ├── ConnectionClosed          the upstream closed the connection mid-response
│   └── ProtocolError             the upstream's answer is not valid HTTP/1.1
├── EvalError                     an evaluation cannot be set up: message names what is wrong
│   ├── DatasetError              a dataset file or query is unusable (names file:line)
│   └── GraderError               a grader definition is invalid, or cannot be exported
├── Skip                          not an error: a grader has nothing to say about this sample
├── EnvError                      an environment cannot be built or used as asked
├── DataError                     training data cannot be made or written; the message says why
│   ├── CurationError             unknown function or kind, bad filters or split, nothing left
│   └── ExportError               unknown format, data it cannot hold, an output folder in the way
├── RecipeError                   a recipe cannot run as asked (parameter, data, base, checkpoint)
├── TrainingStopped               training was interrupted (Ctrl-C); the staged model can resume
├── PromotionRefused              a model did not pass its function's gate; carries the verdict
└── HTTPError                     carries an HTTP status and an OpenAI error `type`
    ├── BadRequest          400   the request is malformed or asks for something invalid
    │   └── Unsupported     400   the chosen provider cannot do what the request asks
    ├── Unauthorized        401   no API key, or an unknown or revoked one
    ├── PermissionDenied    403   the key's role may not do this
    ├── PolicyRefused       403   a rule of the company's refused the call (its reason told)
    ├── NotFound            404   unknown model, trajectory or episode (or another team's)
    ├── PayloadTooLarge     413   body over the configured limit
    ├── RateLimited         429   a key or team is over a limit (`retry-after` header)
    ├── UpstreamRejected    4xx   the provider refused the request itself (its status kept)
    ├── UpstreamError       502   the provider failed (connection, 5xx, bad answer)
    │   ├── ProviderUnavailable  503  switched off by an operator, or its circuit is open
    │   └── StreamInterrupted     the provider's stream broke part-way
    └── UpstreamTimeout     504   the provider did not answer in time
```

Two leaves are not failures. `Skip` is control flow for the eval runner: the sample lacks what
the grader needs (a `feedback` grader on a trajectory without that metric, a judge whose verdict
cannot be read); the runner records the reason and leaves the sample out of that grader's
statistics rather than scoring it 0 and biasing the mean. `TrainingStopped` is raised from the
`KeyboardInterrupt` that stopped a training job, in its place, so the caller learns which
staged model to resume (`veteran train` prints the command and exits 130).

Messages never contain secrets: provider keys are scrubbed before an upstream message is
wrapped (see `providers.openai`), the HTTP client's messages never quote headers or bodies, and
no message quotes an API key a client sent.
"""

from __future__ import annotations

import math
from typing import Any, Protocol


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


class ImportRefused(VeteranError):
    """A line of a history file to import is not a call veteran can keep; nothing is imported."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


# -- the upstream HTTP client (veteran's own, in veteran.http) -------------------------------------


class HTTPClientError(VeteranError):
    """Root of the HTTP client's errors; messages never contain headers or bodies. Providers
    turn these into `UpstreamError` / `UpstreamTimeout`, so a gateway client never sees them."""


class ConnectError(HTTPClientError):
    """No connection could be made (refused, unreachable, TLS failed, connect timeout)."""


class ReadTimeout(HTTPClientError):
    """No byte arrived for longer than the read timeout."""


class TotalTimeout(HTTPClientError):
    """The whole exchange took longer than the total timeout."""


class ConnectionClosed(HTTPClientError):
    """The server closed the connection before the response was complete."""


class ProtocolError(HTTPClientError):
    """The server's answer is not HTTP/1.1 this client can read."""


# -- evaluations, environments, training data -----------------------------------------------------


class EvalError(VeteranError):
    """An evaluation cannot be set up."""


class DatasetError(EvalError):
    """A dataset cannot be read; a bad row is named `file:line`."""


class GraderError(EvalError):
    """A grader definition is invalid, or has no OpenAI graders equivalent."""


class Skip(VeteranError):
    """Raised by `Grader.grade` when the sample cannot be graded by this grader (see above)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EnvError(VeteranError):
    """An environment cannot be built or used as asked; the message says why."""


class DataError(VeteranError):
    """Training data cannot be made or written."""


class CurationError(DataError):
    """The store cannot give the asked-for examples (the message names the filter)."""


class ExportError(DataError):
    """An export cannot be written; nothing was left behind."""


# -- training -------------------------------------------------------------------------------------


class RecipeError(VeteranError):
    """A recipe cannot run as asked: an unknown or invalid parameter, unusable data, a base model
    that is not there, or a resume without a checkpoint."""


class TrainingStopped(VeteranError):
    """Training was interrupted (Ctrl-C); the staged model `model_id` can be resumed. Raised
    from the `KeyboardInterrupt`, in its place: a caller that stops on Ctrl-C catches this."""

    def __init__(self, model_id: str) -> None:
        super().__init__(f"training stopped; staged model {model_id} can be resumed "
                         f"(--resume {model_id})")
        self.model_id = model_id


class JSONShape(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class GateOutcome(Protocol):
    """What `PromotionRefused` carries: `veteran.evals.report.GateVerdict`, named by its shape
    because this module sits below evals."""

    @property
    def passed(self) -> bool: ...

    @property
    def verdict(self) -> str: ...  # "pass", "fail" or "inconclusive"

    @property
    def message(self) -> str: ...

    @property
    def comparison(self) -> JSONShape: ...

    def to_json(self) -> dict[str, Any]: ...


class PromotionRefused(VeteranError):
    """The model failed its function's eval gate, or the gate was inconclusive (and not
    accepted); the message is the gate's verdict."""

    def __init__(self, message: str, verdict: GateOutcome) -> None:
        super().__init__(message)
        self.verdict = verdict


# -- errors with an HTTP status -------------------------------------------------------------------


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


class PolicyRefused(HTTPError):
    """A rule of the company's policies refused the call; the caller is told which and why."""

    status = 403
    type = "permission_error"

    def __init__(self, rule: str, reason: str, headers: dict[str, str]) -> None:
        super().__init__(f"refused by the company's rule {rule!r}: {reason}",
                         code="policy_refused")
        self.rule = rule
        self.headers = headers


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
