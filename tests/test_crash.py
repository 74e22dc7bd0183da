"""kill -9 with 200 streamed requests in flight, five times: the SQLite store stays intact and
keeps every trajectory whose response a client received in full."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from veteran.testing.crash import crash_once
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.mark.parametrize("repetition", range(5))
def test_kill_9_loses_nothing_a_client_received(
    tmp_path: Path, upstream: FakeUpstream, repetition: int
) -> None:
    result = crash_once(tmp_path / "ws", upstream.url, port=free_port(), concurrency=200,
                        kill_after=60)
    assert result.integrity == "ok"
    assert result.reopened
    assert result.completed >= 60  # the kill came with streams both done and in flight
    assert result.completed < result.sent
    assert result.missing == []
    assert result.stored >= result.completed
