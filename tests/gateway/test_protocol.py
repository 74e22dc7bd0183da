"""Write coalescing under uvicorn: a head and a body leave together; nothing waits past a turn."""

from __future__ import annotations

import asyncio
from typing import Any

from veteran.gateway.protocol import CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


def test_head_and_body_are_one_write_and_a_lone_write_waits_one_turn() -> None:
    async def main() -> list[list[bytes]]:
        raw = Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        seen = []
        t.write(b"HEAD ")
        t.write(b"BODY")
        seen.append(list(raw.writes))
        t.write(b"event 1")
        seen.append(list(raw.writes))
        await asyncio.sleep(0)  # one loop turn
        await asyncio.sleep(0)
        seen.append(list(raw.writes))
        t.write(b"last")
        t.close()
        seen.append(list(raw.writes))
        assert raw.closed
        assert t.get_extra_info("peername") == "info:peername"
        return seen

    assert asyncio.run(main()) == [
        [b"HEAD BODY"],
        [b"HEAD BODY"],
        [b"HEAD BODY", b"event 1"],
        [b"HEAD BODY", b"event 1", b"last"],
    ]
