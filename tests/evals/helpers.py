"""Functions the `python` grader tests import by name."""

from __future__ import annotations

from veteran.evals.types import Output, Sample, Score


def shorter_than_reference(sample: Sample, output: Output) -> bool:
    return len(output.text) <= len(str(sample.reference))


async def half(sample: Sample, output: Output) -> Score:
    return Score(0.5, explanation="async")
