"""A fake model for graders and judges: answers from a queue, records the bodies it was sent."""

from __future__ import annotations

from typing import Any


class Scripted:
    """A fake model: answers from a queue and records the bodies it was sent."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        content = self.answers.pop(0)
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}
