"""The SSE decoder gives the same events however the bytes are split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from veteran.providers.sse import SSEDecoder

STREAM = (
    b": keep-alive\r\n\r\n"
    b"data: {\"a\": \"h\xc3\xa9llo \xe2\x9c\x93\"}\r\n\r\n"
    b"event: message\ndata: line one\ndata: line two\n\n"
    b"data:no-space\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ('{"a": "héllo ✓"}', None),
    ("line one\nline two", "message"),
    ("no-space", None),
    ("[DONE]", None),
]


def decode(pieces: list[bytes]) -> list[tuple[str, str | None]]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)] + decoder.close()
    return [(e.data, e.event) for e in events]


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


def test_every_single_split_point() -> None:
    for i in range(len(STREAM) + 1):
        assert decode([STREAM[:i], STREAM[i:]]) == EXPECTED, i


def test_byte_by_byte() -> None:
    assert decode([bytes([b]) for b in STREAM]) == EXPECTED


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_splits(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(pieces) == EXPECTED


def test_last_event_without_blank_line_is_delivered_at_close() -> None:
    assert decode([b"data: a\n\ndata: b"]) == [("a", None), ("b", None)]
