"""Anthropic's Messages API, translated to and from the gateway's internal OpenAI shapes.

Gateway side (`/v1/messages`): `to_openai_request` checks and translates a request,
`to_anthropic_message` an answer, `MessageStreamRenderer` a stream, `error_body` an error.
Provider side (`kind = "anthropic"`): `to_anthropic_request`, `to_openai_completion`, and
`ChunkDecoder` for streams.
"""

from veteran.protocols.anthropic.inbound import to_openai_request
from veteran.protocols.anthropic.outbound import (
    MessageStreamRenderer,
    error_body,
    error_type,
    stop_list,
    to_anthropic_message,
)
from veteran.protocols.anthropic.upstream import (
    ChunkDecoder,
    to_anthropic_request,
    to_openai_completion,
)

__all__ = [
    "ChunkDecoder",
    "MessageStreamRenderer",
    "error_body",
    "error_type",
    "stop_list",
    "to_anthropic_message",
    "to_anthropic_request",
    "to_openai_completion",
    "to_openai_request",
]
