"""The payload codec: the one gate every payload value passes on its way into storage and out.

Payload is what people and models said: a trajectory's request, response, error text, attempts
and context; feedback values and comments; memory documents' text and metadata; the semantic
cache's conversations and answers; eval outputs and scores; the eval call cache's answers; and
spooled trajectories waiting for the store. Metadata (ids, times, function, variant, status,
usage, cost, tags, names) stays plain, so the store can filter, sort and join on it.

Today `PayloadCodec` is the identity over the text stored so far (JSON or plain text): nothing on
disk changed. It exists so that envelope encryption (AES-GCM, issue 10) can take its place
without a caller changing: every store module reads and writes payload through `encode` and
`decode` (or the JSON pair built on them), and `Stored` names what lands in a payload column.
When `Stored` becomes `bytes`, the payload columns migrate to binary and the spool, which writes
stored rows as JSON lines, writes those values base64.

Which columns are payload is declared on the tables (`info={"payload": True}`, schema.py); the
codec a store uses is bound to its engine, so every store API opened over `store.engine` finds
it (`codec_for`). tests/store/test_payload_codec.py holds every payload column to this gate.
"""

from __future__ import annotations

import weakref
from typing import Any

import orjson
from sqlalchemy import Engine

Stored = str  # what a payload column holds; bytes once payloads are encrypted

PAYLOAD = "payload"  # the `Column.info` key that marks a payload column


class PayloadCodec:
    """The identity codec. A replacement overrides `encode` and `decode`; the rest follows."""

    def encode(self, text: str) -> Stored:
        return text

    def decode(self, stored: Stored) -> str:
        return stored

    def encode_json(self, value: Any) -> Stored:
        return self.encode(orjson.dumps(value).decode())

    def decode_json(self, stored: Stored) -> Any:
        return orjson.loads(self.decode(stored))

    def encode_maybe(self, text: str | None) -> Stored | None:
        return None if text is None else self.encode(text)

    def decode_maybe(self, stored: Stored | None) -> str | None:
        return None if stored is None else self.decode(stored)


PLAIN = PayloadCodec()

_bound: weakref.WeakKeyDictionary[Engine, PayloadCodec] = weakref.WeakKeyDictionary()


def bind_codec(engine: Engine, codec: PayloadCodec) -> None:
    """Make `codec` the one every store API over `engine` uses (`Store` does this on open)."""
    _bound[engine] = codec


def codec_for(engine: Engine) -> PayloadCodec:
    """The codec bound to `engine`; the identity codec when none was."""
    return _bound.get(engine, PLAIN)
