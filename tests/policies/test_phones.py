"""phones.region, the short way through phonenumbers' metadata, says what phonenumbers itself
says (`library_region`) for every kind of candidate the detector's regexes produce."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from veteran.policies import phones

_TYPES = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
          PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP,
          PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER, PhoneNumberType.UAN,
          PhoneNumberType.VOICEMAIL]


def _examples() -> list[str]:
    """Every region's example number of every type, written as the regexes take them: in the
    international form with and without spaces, and nationally (parsed as US: most invalid)."""
    numbers = [n for region in sorted(phonenumbers.SUPPORTED_REGIONS) for kind in _TYPES
               if (n := phonenumbers.example_number_for_type(region, kind)) is not None]
    numbers += [n for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
                if (n := phonenumbers.example_number_for_non_geo_entity(code)) is not None]
    return sorted({phonenumbers.format_number(n, form) for n in numbers
                   for form in (PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164,
                                PhoneNumberFormat.NATIONAL)})


def _variants(examples: list[str], rng: random.Random) -> list[str]:
    """Examples with a digit changed, a digit dropped, an extension; US shapes; random +CC."""
    out: list[str] = []
    for example in examples:
        digits = [i for i, c in enumerate(example) if c.isdigit()]
        at = rng.choice(digits)
        out.append(example[:at] + str(rng.randrange(10)) + example[at + 1:])
        out.append(example[:at] + example[at + 1:])
        out.append(f"{example} x{rng.randrange(1, 9999)}")
    for _ in range(1000):
        area, exchange, line = rng.randrange(1000), rng.randrange(1000), rng.randrange(10000)
        out += [f"{area:03}-{exchange:03}-{line:04}", f"({area:03}) {exchange:03}-{line:04}",
                f"+1 {area:03}.{exchange:03}.{line:04} ext. 12",
                f"00{rng.randrange(1, 999)} {rng.randrange(10**9)}",
                f"+{rng.randrange(1, 999)} {rng.randrange(10**10)}"]
    return out


def test_the_short_way_agrees_with_phonenumbers() -> None:
    examples = _examples()
    candidates = examples + _variants(examples, random.Random(14))
    answers = [(c, phones.region(c), phones.library_region(c)) for c in candidates]
    assert [a for a in answers if a[1] != a[2]] == []
    valid = sum(region is not None for _, region, _ in answers)
    assert valid > 2000 and len(candidates) - valid > 2000  # both answers were tried often


@pytest.mark.parametrize(("candidate", "region"), [
    ("+1 415-555-0132", "us"), ("(415) 555-0132", "us"), ("+44 20 7946 0958", "gb"),
    ("+44 (0) 20 7946 0958", "gb"),  # a national prefix: phonenumbers' own parse
    ("+1 204-555-0132", "ca"), ("+800 1234 5678", "001"), ("415-155-0132", None),
    ("+999 1234 5678", None),
])
def test_regions(candidate: str, region: str | None) -> None:
    assert phones.region(candidate) == region


def test_the_library_is_asked_only_where_the_short_way_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(phones, "library_region", asked.append)
    for candidate in ("+1 415-555-0132", "(415) 555-0132", "+33 1 42 68 53 00", "+34832147922"):
        assert phones.region(candidate) is not None
    assert asked == []
    phones.region("+44 (0) 20 7946 0958")
    assert asked == ["+44 (0) 20 7946 0958"]
