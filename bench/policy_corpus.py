"""The labelled detection corpus of issue 14: business prose, chat, code snippets and log lines
with every entity veteran detects, and hard negatives that no detector should report.

    .venv/bin/python bench/policy_corpus.py [--seed 14] [--n 3000] [--out FILE]

`generate(seed, n)` is deterministic for a seed and a Faker release (Faker is pinned exactly in
pyproject's dev extra for that reason); `bench/data/policy_corpus.jsonl` is `generate()` written
out, and tests/bench/test_policy_corpus.py checks that it still is. `company(seed)` is the
company's own configuration the corpus assumes: the customers and code-name dictionaries and
the project-number pattern, and its people directory and CRM addresses, which hold most, not
all, of the corpus's people and addresses.

The templates are in policy_templates.py, the entity values in policy_values.py (how each is
made and checked), the hard negatives in policy_negatives.py.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from policy_templates import JOINERS, REGISTERS  # noqa: E402
from policy_values import CODENAMES, KNOWN, Span, Values, addresses, companies, people  # noqa: E402

__all__ = ["CODENAMES", "ENTITIES", "STRUCTURED", "Sample", "Span", "company", "counts",
           "generate", "load", "write"]

DATA = Path(__file__).parent / "data" / "policy_corpus.jsonl"
ENTITIES = ("secret", "email", "phone", "card", "iban", "national_id", "ip", "person", "address",
            "customer", "project")
STRUCTURED = ("secret", "email", "phone", "card", "iban", "national_id", "ip")
SLOT = re.compile(r"\{\{(\w+)(?::(\w+))?\}\}")


@dataclass(frozen=True, slots=True)
class Sample:
    id: int
    register: str  # prose, chat, code or log
    text: str
    spans: tuple[Span, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "register": self.register, "text": self.text,
                "spans": [list(span) for span in self.spans]}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Sample:
        return cls(row["id"], row["register"], row["text"],
                   tuple(Span(*span) for span in row["spans"]))


def company(seed: int = 14) -> dict[str, dict[str, dict[str, Any]]]:
    """The company configuration the corpus assumes, as `veteran.toml` would give it."""
    customers, _ = companies(seed)
    return {
        "dictionaries": {
            "customers": {"entity": "customer", "terms": customers},
            "codenames": {"entity": "project", "terms": list(CODENAMES), "case_sensitive": True},
            "people": {"entity": "person",
                       "terms": [name for name, _ in people(seed)[:KNOWN]]},
            "addresses": {"entity": "address",
                          "terms": [place for place, _ in addresses(seed)[:KNOWN]]},
        },
        "patterns": {"projects": {"entity": "project", "regex": r"\bPRJ-\d{4}\b"}},
    }


def render(template: str, values: Values) -> tuple[str, list[Span]]:
    parts: list[str] = []
    spans: list[Span] = []
    at = 0
    for match in SLOT.finditer(template):
        parts.append(template[at:match.start()])
        text, span = values.fill(match.group(1), match.group(2))
        if span is not None:
            offset = sum(map(len, parts))
            spans.append(span._replace(start=span.start + offset, end=span.end + offset))
        parts.append(text)
        at = match.end()
    parts.append(template[at:])
    return "".join(parts), spans


def generate(seed: int = 14, n: int = 3000) -> list[Sample]:
    """`n` labelled texts, a quarter in each register; the same for the same seed."""
    values = Values(seed)
    rng = random.Random(seed * 7 + 1)
    registers = list(REGISTERS)
    samples = []
    for i in range(n):
        register = registers[i % len(registers)]
        pieces: list[str] = []
        spans: list[Span] = []
        values.person = None
        for template in rng.sample(REGISTERS[register], rng.choice([1, 2, 2, 3])):
            offset = sum(map(len, pieces)) + len(JOINERS[register]) * len(pieces)
            text, found = render(template, values)
            spans += [span._replace(start=span.start + offset, end=span.end + offset)
                      for span in found]
            pieces.append(text)
        samples.append(Sample(i, register, JOINERS[register].join(pieces), tuple(spans)))
    return samples


def write(samples: list[Sample], path: Path) -> None:
    lines = (json.dumps(sample.to_json(), ensure_ascii=False) for sample in samples)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def load(path: Path = DATA) -> list[Sample]:
    return [Sample.from_json(json.loads(line))
            for line in path.read_text(encoding="utf-8").splitlines()]


def counts(samples: list[Sample]) -> Counter[str]:
    return Counter(span.entity for sample in samples for span in sample.spans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the detection corpus as JSON lines.")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    samples = generate(args.seed, args.n)
    write(samples, args.out)
    size = args.out.stat().st_size
    print(f"{len(samples)} texts, {size / 1e6:.2f} MB -> {args.out}")
    for entity, count in sorted(counts(samples).items()):
        print(f"  {entity:12} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
