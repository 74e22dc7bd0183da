"""The detection corpus (bench/policy_corpus.py) cannot rot: the shipped file is what the
generator makes, every gold span holds a value of its entity that the country's or vendor's own
check accepts, and the bench's scoring rule is the one bench/detection.py states."""

from __future__ import annotations

import base64
import importlib.util
import ipaddress
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest
import stdnum.be.nn
import stdnum.de.idnr
import stdnum.es.dni
import stdnum.es.nie
import stdnum.fi.hetu
import stdnum.fr.nir
import stdnum.iban
import stdnum.ie.pps
import stdnum.it.codicefiscale
import stdnum.luhn
import stdnum.nl.bsn
import stdnum.pl.pesel
import stdnum.se.personnummer
import stdnum.us.ssn

ROOT = Path(__file__).resolve().parents[2]
IDS = {"us_ssn": stdnum.us.ssn, "es_dni": stdnum.es.dni, "es_nie": stdnum.es.nie,
       "fr_nir": stdnum.fr.nir, "it_cf": stdnum.it.codicefiscale, "nl_bsn": stdnum.nl.bsn,
       "pl_pesel": stdnum.pl.pesel, "de_idnr": stdnum.de.idnr, "be_nn": stdnum.be.nn,
       "fi_hetu": stdnum.fi.hetu, "se_pnr": stdnum.se.personnummer, "ie_pps": stdnum.ie.pps}
NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d\d ?\d\d ?\d\d ?[A-D]$")


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


corpus = load("policy_corpus")
detection = load("detection")


@pytest.fixture(scope="module")
def samples() -> list[Any]:
    return corpus.generate()


def test_the_shipped_file_is_what_the_generator_makes(samples: list[Any], tmp_path: Path) -> None:
    corpus.write(samples, tmp_path / "made.jsonl")
    assert (tmp_path / "made.jsonl").read_bytes() == corpus.DATA.read_bytes(), (
        "run .venv/bin/python bench/policy_corpus.py")
    assert corpus.load() == samples
    assert corpus.DATA.stat().st_size < 2_000_000


def test_a_seed_gives_the_same_texts_and_another_seed_others() -> None:
    assert corpus.generate(seed=3, n=50) == corpus.generate(seed=3, n=50)
    assert [s.text for s in corpus.generate(seed=4, n=50)] != [
        s.text for s in corpus.generate(seed=3, n=50)]


def test_every_entity_and_register_is_there_many_times(samples: list[Any]) -> None:
    assert len(samples) >= 3000
    counts = corpus.counts(samples)
    assert set(counts) == set(corpus.ENTITIES)
    assert all(counts[entity] >= 250 for entity in corpus.STRUCTURED), counts
    assert all(counts[entity] >= 100 for entity in corpus.ENTITIES), counts
    registers = Counter(sample.register for sample in samples)
    assert set(registers) == {"prose", "chat", "code", "log"}
    assert min(registers.values()) == len(samples) // 4
    kinds = {(span.entity, span.kind) for sample in samples for span in sample.spans}
    assert {kind for entity, kind in kinds if entity == "national_id"} == {*IDS, "gb_nino"}
    assert len({kind for entity, kind in kinds if entity == "secret"}) >= 20
    texts_without_gold = sum(not sample.spans for sample in samples)
    assert texts_without_gold >= 30  # texts with only hard negatives


def test_gold_spans_hold_valid_values_of_their_entity(samples: list[Any]) -> None:
    config = corpus.company()
    customers = set(config["dictionaries"]["customers"]["terms"])
    people = {name for name, _ in corpus.people(14)}
    places = {place for place, _ in corpus.addresses(14)}
    for sample in samples:
        ends = [0]
        for span in sample.spans:
            value = sample.text[span.start:span.end]
            assert value and value == value.strip(), (sample.id, span)
            assert span.start >= ends[-1], (sample.id, span)  # ordered, no overlap
            ends.append(span.end)
            check_value(span.entity, span.kind, value, customers, people | places)


def check_value(entity: str, kind: str, value: str, customers: set[str], known: set[str]) -> None:
    digits = re.sub(r"[ -]", "", value)
    if entity == "card":
        assert digits.isdigit() and stdnum.luhn.is_valid(digits), value
    elif entity == "iban":
        assert stdnum.iban.is_valid(value), value
    elif entity == "phone":
        number = phonenumbers.parse(value, "US" if kind == "us" else None)
        assert phonenumbers.is_valid_number(number), value
    elif entity == "national_id":
        assert NINO.match(value) if kind == "gb_nino" else IDS[kind].is_valid(value), (kind, value)
    elif entity == "ip":
        assert ipaddress.ip_address(value).version == (6 if kind == "ipv6" else 4), value
    elif entity == "email":
        assert re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-zA-Z]{2,}", value), value
    elif entity == "secret":
        assert (" " not in value) or value.startswith("-----BEGIN "), value
        if kind == "jwt":
            header = value.split(".")[0]
            assert base64.urlsafe_b64decode(header + "==").startswith(b'{"alg":'), value
    elif entity == "person":
        assert value in known, value
    elif entity == "customer":
        assert value in customers, value
    elif entity == "project":
        assert re.fullmatch(r"PRJ-\d{4}", value) or value in corpus.CODENAMES, value
    else:
        assert entity == "address" and value in known and "\n" not in value, value


def test_hard_negatives_hold_no_valid_card_number(samples: list[Any]) -> None:
    """The Luhn-failing 16-digit numbers are the only 16-digit runs outside gold card spans."""
    failing = 0
    for sample in samples:
        text = sample.text
        for span in sample.spans:
            text = text[:span.start] + "#" * (span.end - span.start) + text[span.end:]
        for match in re.finditer(r"(?<![\w-])\d{4}[ ]?\d{4}[ ]?\d{4}[ ]?\d{4}(?![\w-])", text):
            assert not stdnum.luhn.is_valid(match.group(0).replace(" ", "")), match.group(0)
            failing += 1
    assert failing >= 100


def test_a_prediction_counts_when_it_covers_half_of_a_gold_span_of_its_entity() -> None:
    gold = corpus.Span("secret", 10, 30, "openai")
    sample = corpus.Sample(0, "chat", "x" * 40, (gold, corpus.Span("email", 32, 40, "email")))
    run = detection.Run("t", frozenset({"secret", "email", "phone"}), "")
    predictions = [[("secret", 0, 20), ("secret", 21, 30), ("phone", 10, 30), ("email", 33, 40)]]
    detection.score(run, [sample], predictions)
    secret, email, phone = (run.tallies[e] for e in ("secret", "email", "phone"))
    assert (secret.gold, secret.found, secret.predicted, secret.right) == (1, 1, 2, 1)
    assert (email.found, email.right) == (1, 1)  # 7 of 8 characters
    assert (phone.predicted, phone.right, phone.precision) == (1, 0, 0.0)
    assert secret.f2 == pytest.approx(5 * 0.5 * 1 / (4 * 0.5 + 1))
    assert detection.figures(secret) == "0.500 / 1.000 / 0.833"
    assert detection.figures(detection.Tally(gold=3)) == "n/a / 0.000 / 0.000"
