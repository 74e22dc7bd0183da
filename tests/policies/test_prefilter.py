"""The Hyperscan prefilter of the secret rules (policies/prefilter.py): it finds exactly what the
literals-and-lines way finds, on the labelled corpus and on made-up texts; it steps aside for
texts it cannot judge; without hyperscan the detector works the old way; threads share it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import in_threads
from veteran.policies import prefilter
from veteran.policies.entities import Finding
from veteran.policies.secrets import Secrets, secrets

CORPUS = Path(__file__).parents[2] / "bench" / "data" / "policy_corpus.jsonl"

GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PIECES = [
    "AKIAIOSFODNN7EXAMPLE", GH, "sk-proj-Ab3_dE5-fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5z",
    "sk-ant-api03-" + "x1Y2" * 12, "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "sk_live_" + "a1" * 20,
    "postgres://app:s3cr3t!x@db.internal:5432/app", "xoxb-123456789012-1234567890123-AbCdEf",
    'secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "api_key: 'abcdefghijklmnop1234'",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x2y\n-----END RSA PRIVATE KEY-----",
    "password=hunter2", "token", "AKIA", "://", " ", "\n", "=", ":", ".", "-", "_", "é", "\x1c",
    "the quarterly numbers look steady", "SharedAccessKey=", "eyJhbGciOiJIUzI1NiJ9.eyJ9.c2ln",
]


@pytest.fixture(scope="module")
def both() -> tuple[Secrets, Secrets]:
    fast = secrets()
    assert fast.prefiltered, "hyperscan is a dependency: the prefilter should be on here"
    return fast, Secrets(prefilter=False)


def spans(findings: list[Finding]) -> list[tuple[int, int, str | None]]:
    return sorted({(f.start, f.end, f.detail) for f in findings})


def test_the_same_secrets_on_every_corpus_text(both: tuple[Secrets, Secrets]) -> None:
    fast, slow = both
    texts = [orjson.loads(line)["text"] for line in CORPUS.read_text().splitlines()]
    found = 0
    for text in texts:
        expected = spans(slow.find(text))
        assert spans(fast.find(text)) == expected, text
        found += len(expected)
    assert found > 1000  # the corpus holds secrets in every format: the check is not empty


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12))
def test_the_same_secrets_on_made_up_texts(both: tuple[Secrets, Secrets],
                                           pieces: list[str]) -> None:
    fast, slow = both
    text = " ".join(pieces)
    assert spans(fast.find(text)) == spans(slow.find(text))


def test_it_steps_aside_for_texts_it_cannot_judge(both: tuple[Secrets, Secrets]) -> None:
    fast, slow = both
    key = "AKIAIOSFODNN7EXAMPLE"
    assert fast._prefilter is not None
    assert fast._prefilter.matched(f"clé {key}") is None  # not ASCII
    assert fast._prefilter.matched(f"a\x1c{key}") is None  # a separator only Python calls space
    for text in (f"clé {key}", f"a\x1c{key}"):
        assert [f.text for f in fast.find(text)] == [key]
    woken = fast._prefilter.matched(f"key {key} here")
    assert woken is not None and len(woken) >= 1
    assert fast._prefilter.matched("nothing to see in this plain sentence") == []


def test_without_hyperscan_the_literals_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # `import hyperscan` raises ImportError
    assert prefilter.build([re.compile("a")]) is None
    plain = Secrets()
    assert not plain.prefiltered
    assert [f.text for f in plain.find("key AKIAIOSFODNN7EXAMPLE")] == ["AKIAIOSFODNN7EXAMPLE"]


def test_a_pattern_hyperscan_cannot_read_wakes_on_every_text() -> None:
    plain = re.compile(r"(?<![\w-])abc")  # a lookbehind: compiled as a superset
    odd = re.compile(r"xa{,3}y")  # `xa{0,3}y` to Python, the literal `xa{,3}y` to Hyperscan
    built = prefilter.build([plain, odd])
    assert built is not None
    assert built.matched("nothing") == [1]
    assert built.matched("xabc") == [0, 1]
    assert odd.search("xaay")  # what a prefilter reading it as Hyperscan does would miss


def test_threads_share_one_prefilter(both: tuple[Secrets, Secrets]) -> None:
    fast, _ = both
    texts = [f"call {i}: AKIAIOSFODNN7EXAMPL{i % 10} and {GH}" for i in range(200)]
    expected = [spans(fast.find(t)) for t in texts]

    def work(_: int) -> None:
        for _ in range(5):
            assert [spans(fast.find(t)) for t in texts] == expected

    assert in_threads(work, 4) == []
    assert all(len(s) == 2 for s in expected)
