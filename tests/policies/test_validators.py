"""The detector's short ways hold to the libraries' answers: IBANs against python-stdnum, card
networks against Luhn and the IIN table read plainly, a `\\b` pattern against `re`, and the memo
that keeps validators' answers keeps no value."""

from __future__ import annotations

import random
import re

import pytest
import stdnum.iban
import stdnum.luhn
import stdnum.numdb

from veteran.policies import memo
from veteran.policies.dictionaries import _after_boundary, _at_boundaries, _branches
from veteran.policies.identifiers import _NETWORKS, card_network, iban_length
from veteran.policies.memo import Memoised

_CLASSES = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _stdnum_iban_length(candidate: str) -> int:
    """iban_length as first written: stdnum.iban on every cut, longest first."""
    cut = len(candidate)
    while cut >= 15:
        if stdnum.iban.is_valid(candidate[:cut].replace(" ", "")):
            return cut
        space = candidate.rfind(" ", 0, cut)
        cut = space if space > 0 else cut - 1
    return 0


def _random_iban(rng: random.Random, countries: list[str]) -> str:
    country = rng.choice([*countries, "XX", "QQ"])
    found = stdnum.numdb.get("iban").info(country)[0][1]
    bban = "".join(rng.choice(_CLASSES[kind]) for count, kind in
                   re.findall(r"([0-9]+)!([nac])", found.get("bban", "4!n12!n"))
                   for _ in range(int(count)))
    check = (stdnum.iban.calc_check_digits(f"{country}00{bban}") if rng.random() < 0.8
             else f"{rng.randrange(100):02}")
    iban = country + check + bban
    if rng.random() < 0.3:  # what follows it in the text
        iban += "".join(rng.choice("0123456789AB") for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.2:
        iban = iban[:-rng.randint(1, 3)]
    if rng.random() < 0.6:
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        if rng.random() < 0.3:
            iban = iban.replace(" ", "", rng.randint(1, 3))
    return iban


def test_iban_length_agrees_with_stdnum() -> None:
    rng = random.Random(14)
    countries = [c for c in (a + b for a in _CLASSES["a"] for b in _CLASSES["a"])
                 if stdnum.numdb.get("iban").info(c)[0][1]]
    assert {"GB", "DE", "BE", "ES", "NO", "ME"} <= set(countries)
    candidates = [_random_iban(rng, countries) for _ in range(6000)]
    answers = [(c, iban_length(c), _stdnum_iban_length(c)) for c in candidates]
    assert [a for a in answers if a[1] != a[2]] == []
    assert 2000 < sum(1 for a in answers if a[1]) < 5000


def test_the_countries_stdnum_checks_further_agree_with_it() -> None:
    """Belgium, Spain, Montenegro and Norway: their IBANs with one BBAN digit changed and the
    IBAN's check digits made right again, so that only the country's own check can say no."""
    rng = random.Random(14)
    valid = ["BE68539007547034", "ES7921000813610123456789", "ME25505000012345678951",
             "NO9386011117947", "BE71096123456769", "ES9121000418450200051332"]
    candidates = list(valid)
    for iban in valid * 40:
        at = rng.randrange(4, len(iban))
        bban = iban[4:at] + str(rng.randrange(10)) + iban[at + 1:]
        candidates.append(iban[:2] + stdnum.iban.calc_check_digits(iban[:2] + "00" + bban) + bban)
    answers = [(c, iban_length(c), len(c) if stdnum.iban.is_valid(c) else 0) for c in candidates]
    assert [a for a in answers if a[1] != a[2]] == []
    assert 20 < sum(1 for a in answers if a[1]) < len(answers) - 20


def _plain_network(digits: str) -> str | None:
    if not 13 <= len(digits) <= 19 or not stdnum.luhn.is_valid(digits):
        return None
    for low, high, lengths, network in _NETWORKS:
        if low <= int(digits[:len(str(low))]) <= high and len(digits) in lengths:
            return network
    return None


def test_card_network_agrees_with_the_table_read_plainly() -> None:
    rng = random.Random(14)
    answers = []
    for _ in range(20_000):
        digits = rng.choice("123456") + "".join(str(rng.randrange(10))
                                                for _ in range(rng.randint(11, 19)))
        if rng.random() < 0.5:
            digits += stdnum.luhn.calc_check_digit(digits)
        answers.append((digits, card_network(digits), _plain_network(digits)))
    assert [a for a in answers if a[1] != a[2]] == []
    assert len({a[1] for a in answers}) == 9  # every network and None


def test_a_pattern_after_a_word_boundary_is_found_as_re_finds_it() -> None:
    rng = random.Random(14)
    patterns = [r"\bPRJ-\d{4}\b", r"\b\w+@", r"\bé\w*", r"\b\d{2,}", r"\b[A-Z]{2,3}-\d+",
                r"\b(?:ab|cd)+", r"\b_x", r"\b-\d", r"\b\.", r"\b(?=\d)\d\d", r"\b[]a]+"]
    for _ in range(3000):
        text = "".join(rng.choice("ab cdé_-.PRJ-0123 x\n@]") for _ in range(rng.randint(0, 30)))
        for pattern in patterns:
            unbounded = _after_boundary(pattern)
            assert unbounded is not None
            assert ([m.span() for m in re.finditer(pattern, text) if m.end() > m.start()]
                    == [m.span() for m in _at_boundaries(unbounded, text)
                        if m.end() > m.start()])


def test_a_boundary_that_is_one_of_two_branches_is_left_to_re() -> None:
    assert _after_boundary(r"\bx|y") is None and _after_boundary(r"x\b") is None
    assert _branches(r"a|b") and _branches(r"(a)|b") and _branches(r"[a]|b")
    assert not any(_branches(p) for p in (r"(a|b)", r"[|]", r"\|", r"[]|]x", r"[^]|]", r"[\]|]"))


def test_the_memo_keeps_answers_not_values() -> None:
    calls: list[str] = []

    @Memoised
    def valid(value: str) -> bool:
        calls.append(value)
        return value.endswith("1")

    assert [valid("078-05-1121"), valid("078-05-1121"), valid("078-05-1120")] == [
        True, True, False]
    assert calls == ["078-05-1121", "078-05-1120"]
    kept = valid._answers
    assert all(isinstance(k, bytes) and len(k) == 16 for k in kept)
    assert not any(b"078" in k or b"1121" in k for k in kept)
    valid.clear()
    valid("078-05-1121")
    assert len(calls) == 3


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "SIZE", 3)
    seen = Memoised(len)
    for value in ("a", "bb", "ccc", "dddd", "eeeee"):
        seen(value)
    assert len(seen._answers) == 3
    calls: list[str] = []
    probe = Memoised(calls.append)
    for value in ("a", "b", "c", "d", "a"):  # "a" was dropped first
        probe(value)
    assert calls == ["a", "b", "c", "d", "a"]
