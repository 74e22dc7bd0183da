"""The detector of issue 14: what it finds (exact spans, in prose, chat, code and logs), what it
refuses (values that fail their checksum or numbering plan, look-alikes), overlaps, the company's
dictionaries and patterns, and the `entities=` filter."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from veteran.config import parse_config_text
from veteran.policies import Detector, Finding
from veteran.policies.entities import settle
from veteran.policies.secrets import secrets
from veteran.policy_settings import BUILTIN_ENTITIES, DictionaryConfig, PatternConfig


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def found(detector: Detector, text: str,
          entities: list[str] | None = None) -> list[tuple[str, str]]:
    """(entity, value) of each finding, after checking that its offsets point at its value."""
    findings = detector.find(text, entities)
    for f in findings:
        assert text[f.start:f.end] == f.text
    return [(f.entity, f.text) for f in findings]


def the_one(detector: Detector, text: str, value: str) -> Finding:
    """The single finding of `text`, which must be `value` at its place."""
    findings = detector.find(text)
    assert [f.text for f in findings] == [value], findings
    assert findings[0].start == text.index(value)
    assert findings[0].end == text.index(value) + len(value)
    return findings[0]


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# -- secrets ---------------------------------------------------------------------------------

GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
JWT = ".".join([b64url({"alg": "HS256", "typ": "JWT"}), b64url({"sub": "42"}),
                "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"])


@pytest.mark.parametrize(("text", "value", "detail"), [
    ("key AKIAIOSFODNN7EXAMPLE in the log", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    (f"export GITHUB_TOKEN={GH}\n", GH, "github_token"),
    ("OPENAI_API_KEY=sk-proj-Ab3_dE5-fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5z",
     "sk-proj-Ab3_dE5-fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5z", "openai_api_key"),
    ("client = Anthropic(api_key='sk-ant-api03-" + "x1Y2" * 12 + "')",
     "sk-ant-api03-" + "x1Y2" * 12, "anthropic_api_key"),
    ("maps key AIzaSyA1234567890abcdefghijklmnopqrstuv.", "AIzaSyA1234567890abcdefghijklmnopqrstuv",
     "google_api_key"),
    ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
     "huggingface_token"),
    # detect-secrets' Stripe pattern stops at 24 characters: the key is reported whole
    ("stripe sk_live_" + "a1" * 20 + " rotated", "sk_live_" + "a1" * 20, "stripe_access_key"),
    ("postgres://app:s3cr3t!x@db.internal:5432/app", "s3cr3t!x", "url_password"),
    (f"Authorization: Bearer {JWT}.", JWT, "jwt"),
    ('  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n',
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key"),
    ("SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
     "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
])
def test_secrets_in_known_formats(detector: Detector, text: str, value: str,
                                  detail: str) -> None:
    finding = the_one(detector, text, value)
    assert (finding.entity, finding.detail) == ("secret", detail)


def test_a_private_key_is_its_whole_block(detector: Detector) -> None:
    block = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x2y\nQk9C==\n"
             "-----END RSA PRIVATE KEY-----")
    finding = the_one(detector, f"key:\n{block}\nthanks", block)
    assert finding.detail == "private_key"


def test_look_alikes_are_not_secrets(detector: Detector) -> None:
    header_not_json = "eyJub3QganNvbg.eyJzdWIiOiIxIn0.c2ln"  # "{not json"
    assert found(detector, f"token {header_not_json} here") == []
    prose = "a task-management-framework-for-enterprise plan; risk-based pricing; AP rollout"
    assert found(detector, prose) == []
    assert found(detector, "see https://example.com/path?q=1 and mailto:x") == []


def test_every_detect_secrets_plugin_has_literals_to_wake_it() -> None:
    """A plugin without triggers would run on every text (a newer detect-secrets): name it."""
    assert secrets()._always == []
    assert "AWSKeyDetector" in secrets().plugins and "IPPublicDetector" not in secrets().plugins


# -- e-mail, phone, ip -----------------------------------------------------------------------

def test_emails(detector: Detector) -> None:
    text = "Write to Jane.Doe+billing@mail.example.co.uk, or (bob@example.org). @decorator"
    assert found(detector, text) == [("email", "Jane.Doe+billing@mail.example.co.uk"),
                                     ("email", "bob@example.org")]
    assert found(detector, "ssh deploy@10.0.0.1 and git@host") == [("ip", "10.0.0.1")]
    assert found(detector, "bob@example.org wrote") == [("email", "bob@example.org")]


@pytest.mark.parametrize("phone", ["(415) 555-0132", "415-555-0132", "415.555.0132",
                                   "+1 415-555-0132", "+1 (415) 555-0132", "+14155550132",
                                   "+44 20 7946 0958", "+33 1 42 68 53 00", "+4930901820"])
def test_phones(detector: Detector, phone: str) -> None:
    assert the_one(detector, f"Call me at {phone}, thanks", phone).entity == "phone"


@pytest.mark.parametrize(("text", "phone"), [
    ("call (+44 20 7946 0958) today", "+44 20 7946 0958"),
    ("call ((415) 555-2671) today", "(415) 555-2671"),
    ("[+33 1 42 68 53 00]", "+33 1 42 68 53 00"),
])
def test_a_phone_inside_brackets(detector: Detector, text: str, phone: str) -> None:
    assert the_one(detector, text, phone).entity == "phone"


def test_a_plus_number_that_runs_into_the_next_number_is_cut_back(detector: Detector) -> None:
    assert found(detector, "tel +4930901820  4111111111111111 ok") == [
        ("phone", "+4930901820"), ("card", "4111111111111111")]
    assert found(detector, "+4930901820 4111111111111111", ["phone"]) == [
        ("phone", "+4930901820")]
    assert found(detector, "+1234567890123 99") == []  # no valid prefix: no phone


@pytest.mark.parametrize(("text", "expected"), [
    ("4111 1111 1111 1111 4111 1111 1111 1111",
     [("card", "4111 1111 1111 1111"), ("card", "4111 1111 1111 1111")]),
    ("4111 1111 1111 1111 198.51.100.77", [("card", "4111 1111 1111 1111"),
                                           ("ip", "198.51.100.77")]),
    ("+44 20 7946 0958 4111 1111 1111 1111", [("phone", "+44 20 7946 0958"),
                                              ("card", "4111 1111 1111 1111")]),
    ("desk 415-555-0132 x20456789", [("phone", "415-555-0132")]),
    ("ES35 4049 1470 3105 8978 5929 4111 1111 1111 1111",
     [("iban", "ES35 4049 1470 3105 8978 5929"), ("card", "4111 1111 1111 1111")]),
    # German numbers have many lengths: `+4930901820 5500` is one, yet the card is whole
    ("+4930901820 5500 0055 5555 5559", [("phone", "+4930901820"),
                                         ("card", "5500 0055 5555 5559")]),
    ("+4930901820  (415) 555-2671", [("phone", "+4930901820"), ("phone", "(415) 555-2671")]),
    # `2671 4111 1111 1111` passes Luhn, but a number is not cut out of a phone's last group
    ("(415) 555-2671 4111 1111 1111 1111-", [("phone", "(415) 555-2671"),
                                             ("card", "4111 1111 1111 1111")]),
])
def test_two_numbers_a_space_apart_are_both_found(
        detector: Detector, text: str, expected: list[tuple[str, str]]) -> None:
    """A candidate that runs into the next number is cut back to its longest valid prefix, and
    what follows is scanned again."""
    assert found(detector, text) == expected


def test_a_failed_candidate_is_not_cut_into_a_shorter_find(detector: Detector) -> None:
    """Cutting back keeps to the shapes: no prefix of a longer number becomes a card."""
    assert found(detector, "ref 4111 1111 1111 1111111 end", ["card"]) == []
    assert found(detector, "4111 1111 1111 1112 411", ["card"]) == []


def test_a_phone_extension_belongs_to_its_number(detector: Detector) -> None:
    assert found(detector, "desk: 415-555-0132 x204.") == [("phone", "415-555-0132 x204")]


@pytest.mark.parametrize("text", [
    "order 4155550132 shipped",  # ten bare digits
    "call 415-155-0132",  # no US exchange starts with 1
    "logged 2024-05-01 12:00:03.123Z pid=48213",
    "+44 20 7946 095",  # too short for the UK
])
def test_not_phones(detector: Detector, text: str) -> None:
    assert found(detector, text, ["phone"]) == []


def test_ips(detector: Detector) -> None:
    text = ("client=10.2.3.4 peer 2001:db8::8a2e:370:7334; version 1.2.3.4.5, v1.2.3.4, "
            "build 10.0.17763.1234, 999.1.1.1, std::vector, ::1, at 12:30:45, "
            "mac 00:1a:2b:3c:4d:5e")
    assert found(detector, text) == [("ip", "10.2.3.4"), ("ip", "2001:db8::8a2e:370:7334")]
    assert found(detector, "server 192.168.1.20.") == [("ip", "192.168.1.20")]
    whole = "9cf4:138b:331f:4b55:27a:8315:b036:8008"
    assert found(detector, f"listening on {whole}:40790") == [("ip", whole)]
    assert found(detector, "listening on 2001:db8::1:40790x") == []


# -- cards, IBANs, national ids ----------------------------------------------------------------

@pytest.mark.parametrize(("card", "network"), [
    ("4111 1111 1111 1111", "visa"), ("4111-1111-1111-1111", "visa"),
    ("4111111111111111", "visa"), ("5500 0055 5555 5559", "mastercard"),
    ("3782 822463 10005", "amex"), ("6011000990139424", "discover"),
])
def test_cards(detector: Detector, card: str, network: str) -> None:
    assert the_one(detector, f"paid with {card}.", card).detail == network


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails Luhn
    "card 4111 1111 1111-1111",  # mixed separators
    "ref 1234567812345670",  # passes Luhn, but no network issues 1...
    "order #0000000000000000",
])
def test_not_cards(detector: Detector, text: str) -> None:
    assert found(detector, text, ["card"]) == []


@pytest.mark.parametrize(("text", "iban"), [
    ("IBAN IT55 Q186 6774 2914 5419 3215 150 ok", "IT55 Q186 6774 2914 5419 3215 150"),
    ("is_valid_iban('DE79 5249 7671 1479 7727 30')", "DE79 5249 7671 1479 7727 30"),
    ("to DE73 3608 0815 6718 1508 44 and", "DE73 3608 0815 6718 1508 44"),
    ("wire it to DE68 2716 0709 8414 1311 31, ref", "DE68 2716 0709 8414 1311 31"),
])
def test_a_valid_iban_wins_over_a_card_number_inside_it(detector: Detector, text: str,
                                                        iban: str) -> None:
    assert the_one(detector, text, iban).entity == "iban"
    assert [f.entity for f in detector.find(text, ["card"])] == ["card"]  # asked for alone


def test_ibans(detector: Detector) -> None:
    text = "IBAN GB82 WEST 1234 5698 7654 32, or DE89370400440532013000 ABCD."
    assert found(detector, text) == [("iban", "GB82 WEST 1234 5698 7654 32"),
                                     ("iban", "DE89370400440532013000")]
    assert found(detector, "IBAN GB82WEST12345698765433") == []  # checksum


@pytest.mark.parametrize(("value", "detail"), [
    ("078-05-1121", "us_ssn"), ("005-38-3133", "us_ssn"), ("AB 12 34 56 C", "gb_nino"),
    ("JH123456A", "gb_nino"),
    ("18034063Q", "es_dni"), ("X9549656X", "es_nie"), ("BCCFRC15M25E852P", "it_cf"),
    ("172023201312126", "fr_nir"), ("226072A00407666", "fr_nir"), ("185022B00512305", "fr_nir"),
    ("77.08.26-868.25", "be_nn"), ("291002A5844", "fi_hetu"),
    ("140446-485S", "fi_hetu"), ("961122-5823", "se_pnr"), ("1234567T", "ie_pps"),
])
def test_national_ids_by_their_shape(detector: Detector, value: str, detail: str) -> None:
    finding = the_one(detector, f"on file: {value}.", value)
    assert (finding.entity, finding.detail) == ("national_id", detail)


@pytest.mark.parametrize(("text", "value", "detail"), [
    ("BSN 214035797", "214035797", "nl_bsn"), ("PESEL: 26070814178", "26070814178", "pl_pesel"),
    ("Steuer-ID 36574261809", "36574261809", "de_idnr"), ("SSN#123456789", "123456789", "us_ssn"),
    ("rijksregisternummer 77082686825", "77082686825", "be_nn"),
])
def test_bare_ids_after_their_names(detector: Detector, text: str, value: str,
                                    detail: str) -> None:
    assert the_one(detector, text, value).detail == detail
    assert found(detector, f"order {value}") == []


def test_a_bare_id_after_a_name_that_says_national_id(detector: Detector) -> None:
    text = "fixtures = {'national_id': '214035797', 'order_id': '214035797'}"
    assert found(detector, text) == [("national_id", "214035797")]  # a BSN, or an SSN


@pytest.mark.parametrize("text", [
    "SSN 000-12-3456", "SSN 666-12-3456", "SSN 219-09-9999", "NINO QQ 12 34 56 C",
    "NINO GB 12 34 56 A", "DNI 18034063R", "CF BCCFRC15M25E852A", "BSN 214035798",
    "INV-2024-123456", "SO12345678", "ORD-2025-004211",
])
def test_not_national_ids(detector: Detector, text: str) -> None:
    assert found(detector, text, ["national_id"]) == []


def test_a_number_inside_a_candidate_of_another_shape_is_still_tried(detector: Detector) -> None:
    """One regex pass finds every shape, yet a match of one family (`+...`, capitals, digits)
    does not hide another family's that starts inside it, as separate passes would not."""
    assert found(detector, "tel +1 078-05-1121") == [("national_id", "078-05-1121")]
    assert found(detector, "AB12 4111 1111 1111 1111") == [("card", "4111 1111 1111 1111")]
    assert found(detector, "ref XY99 078-05-1121 ok") == [("national_id", "078-05-1121")]


# -- overlaps and the filter -------------------------------------------------------------------

def test_the_more_specific_entity_wins_an_overlap() -> None:
    card = Finding("card", 0, 19, "4111 1111 1111 1111", "visa")
    phone = Finding("phone", 5, 19, "1111 1111 1111")
    longer_phone = Finding("phone", 0, 25, "x" * 25)
    assert settle([phone, card]) == [card]
    assert settle([phone, longer_phone]) == [longer_phone]
    email = Finding("email", 0, 17, "jordan@example.io")
    person = Finding("person", 0, 6, "jordan", "people")
    assert settle([person, email]) == [email]
    project = Finding("project", 0, 8, "12345678", "orders")
    assert settle([Finding("phone", 0, 8, "12345678"), project], frozenset({"orders"})) == [
        project]


def test_a_longer_structured_finding_wins_over_one_it_contains() -> None:
    """Containment beats specificity: a valid IBAN is not a card number with letters around."""
    iban = Finding("iban", 0, 27, "DE73 3608 0815 6718 1508 44")
    card = Finding("card", 5, 24, "3608 0815 6718 1508", "visa")
    assert settle([card, iban]) == [iban]
    # a partial overlap still goes by specificity, and a secret over the IBAN lets the card be
    secret = Finding("secret", 20, 40, "x" * 20, "jwt")
    assert settle([iban, Finding("card", 20, 36, "y" * 16, "visa")]) == [
        Finding("card", 20, 36, "y" * 16, "visa")]
    inner = Finding("card", 0, 16, "z" * 16, "visa")
    assert settle([Finding("iban", 0, 27, "w" * 27), inner, secret]) == [inner, secret]
    # a company's pattern is no structured entity: the card inside it wins
    pattern = Finding("order", 0, 30, "o" * 30, "orders")
    assert settle([pattern, card], frozenset({"orders"})) == [card]


def test_a_url_password_is_a_secret_not_an_email(detector: Detector) -> None:
    text = "DATABASE_URL=postgres://app:hunter22@db.example.com/app"
    assert found(detector, text) == [("secret", "hunter22")]
    assert found(detector, text, ["email"]) == []


def test_only_the_entities_asked(detector: Detector) -> None:
    text = f"mail bob@example.org, call +44 20 7946 0958, key {GH}, ip 10.0.0.7"
    assert found(detector, text, ["email", "ip"]) == [("email", "bob@example.org"),
                                                      ("ip", "10.0.0.7")]
    assert found(detector, text, ["secret"]) == [("secret", GH)]
    assert found(detector, text, []) == []
    assert found(detector, text, ["unknown"]) == []
    assert len(found(detector, text)) == 4


def test_findings_are_sorted_and_disjoint(detector: Detector) -> None:
    text = ("Jane (jane@example.com, +1 415-555-0132) paid 4111 1111 1111 1111 from "
            "GB82 WEST 1234 5698 7654 32; SSN 078-05-1121; host 10.0.0.1; key AKIAIOSFODNN7EXAMPLE")
    findings = detector.find(text)
    assert [f.entity for f in findings] == ["email", "phone", "card", "iban", "national_id",
                                            "ip", "secret"]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))


# -- the company's dictionaries and patterns -----------------------------------------------------

def test_dictionaries_inline_and_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "people.txt").write_text("# our people\nJordan Smith\n\nAda Lovelace  # founder\n")
    detector = Detector(dictionaries={
        "people": DictionaryConfig(entity="person", file="people.txt", terms=["Grace Hopper"]),
        "codes": DictionaryConfig(entity="project", terms=["BlueJay"], case_sensitive=True),
    }, folder=tmp_path)
    text = "JORDAN SMITH met ada lovelace and Grace Hopper on BlueJay, not bluejay or BlueJays."
    assert found(detector, text) == [("person", "JORDAN SMITH"), ("person", "ada lovelace"),
                                     ("person", "Grace Hopper"), ("project", "BlueJay")]
    assert found(detector, "Jordan Smithson, xAda Lovelace") == []  # whole words only
    assert detector.find("Ada Lovelace")[0].detail == "people"
    assert detector.entities() == [*BUILTIN_ENTITIES, "project"]


def test_a_dictionary_term_keeps_its_offsets_when_lowering_grows_the_text() -> None:
    detector = Detector(dictionaries={"c": DictionaryConfig(entity="customer", terms=["Globex"])})
    text = "İİİ Globex"  # 'İ'.lower() is two characters
    assert found(detector, text) == [("customer", "Globex")]


def test_patterns() -> None:
    detector = Detector(patterns={"projects": PatternConfig(entity="project",
                                                            regex=r"\bPRJ-\d{4}\b")})
    text = "PRJ-1234 and PRJ-12345 and prj-1234"
    findings = detector.find(text)
    assert [(f.entity, f.text, f.detail, f.start) for f in findings] == [
        ("project", "PRJ-1234", "projects", 0)]
    assert detector.find(text, ["email"]) == []


def test_for_config_reads_dictionary_files_from_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "customers.txt").write_text("Initech\n")
    config = parse_config_text(
        '[dictionaries.customers]\nentity = "customer"\nfile = "customers.txt"\n'
        '[patterns.tickets]\nentity = "ticket"\nregex = "TCK-[0-9]+"\n',
        "veteran.toml", folder=tmp_path)
    detector = Detector.for_config(config)
    assert found(detector, "Initech filed TCK-77") == [("customer", "Initech"),
                                                       ("ticket", "TCK-77")]
    assert detector.entities() == config.entities()
