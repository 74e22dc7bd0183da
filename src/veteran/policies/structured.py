"""E-mail addresses, phone numbers, payment cards, IBANs, national identifiers and IP addresses:
candidates found by a few compiled regexes, each kept only when a maintained validator agrees
(phonenumbers, python-stdnum, `ipaddress`; identifiers.py has the table of ids).

Why the regexes look as they do (measured on 1 MB of mixed prose, chat, code and logs): Python's
`re` skips quickly only to a pattern's first character class, and tries every alternative at
every position otherwise (one alternation of a dozen named shapes: 0.9 s a megabyte). So each
pass starts with one class (`[0-9]`, `[+(]`, `[A-Z]`, `:`), refuses at once a position inside a
word or a number (a fixed lookbehind), and only then tries the shapes, whose kind is the empty
group that closes the match (`lastgroup`): all the digit shapes in one pass, about 25 ms a
megabyte. E-mails start from each `@` (`str.find`), found backwards then forwards.

Phones: US numbers as written in the US ((415) 555-0100, 415-555-0100, 415.555.0100, +1 and
001 forms, extensions), any country's in the international form (+44 20 7946 0958, 0044...),
each checked by `phonenumbers.is_valid_number`; ten bare digits or another country's national
form (020 7946 0958) are not reported. IPv4: four dotted numbers up to 255, not part of a longer
dotted run (version 1.2.3.4.5); IPv6 with at least three groups (not `::1`, not `std::vector`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from functools import lru_cache

import phonenumbers

from veteran.policies.entities import Finding
from veteran.policies.identifiers import (
    CONTEXT,
    NAMES_OF_ANY,
    NATIONAL_IDS,
    card_network,
    iban_length,
    is_nino,
)

_EXT = r"(?:\ ?(?:x|ext\.?)\ ?[0-9]{1,6})?"
_DIGITS = re.compile(rf"""[0-9](?<![0-9A-Za-z_.][0-9])(?:
  [0-9]{{2}}[ .-][0-9]{{3}}[ .-][0-9]{{4}}{_EXT}(?P<phone>)
 |[0-9]{{2}}(?P<ss>[- ])[0-9]{{2}}(?P=ss)[0-9]{{4}}(?P<ssn>)
 |[0-9]{{0,2}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}(?P<ipv4>)
 |[0-9]{{3}}(?:(?P<cs>[ -])[0-9]{{4}}(?P=cs)[0-9]{{4}}(?P=cs)[0-9]{{4}}(?:(?P=cs)[0-9]{{3}})?
    |(?P<as>[ -])[0-9]{{6}}(?P=as)[0-9]{{4,5}})(?P<card>)
 |(?<=[12])\ [0-9]{{2}}\ [0-9]{{2}}\ (?:[0-9]{{2}}|2[AB])
    \ [0-9]{{3}}\ [0-9]{{3}}\ [0-9]{{2}}(?P<fr_nir>)
 |[0-9]\.[0-9]{{2}}\.[0-9]{{2}}-[0-9]{{3}}\.[0-9]{{2}}(?P<be_nn>)
 |(?:[0-9]{{2}})?[0-9]{{5}}[-+][0-9]{{3}}[0-9A-Y](?P<pnr>)
 |[0-9]{{5}}[A-FU-Y][0-9]{{3}}[0-9A-Y](?P<fi_hetu>)
 |[0-9]{{7}}-?[A-Z](?P<es_dni>)
 |[0-9]{{6}}[A-W][A-IW]?(?P<ie_pps>)
 |(?<=0)0[1-9][0-9 ().-]{{5,20}}[0-9](?P<intl>)
 |[0-9]{{8,18}}(?P<run>)
)""", re.VERBOSE)
_PLUS = re.compile(rf"""[+(](?<![0-9A-Za-z_+(][+(])(?:
  (?<=\+)1[ .-]?(?:\([0-9]{{3}}\)[ .-]?|[0-9]{{3}}[ .-])[0-9]{{3}}[ .-][0-9]{{4}}{_EXT}(?P<phone>)
 |(?<=\()[0-9]{{3}}\)[ .-]?[0-9]{{3}}[ .-][0-9]{{4}}{_EXT}(?P<phone_paren>)
 |(?<=\+)[1-9][0-9 ().-]{{5,20}}[0-9](?P<intl>)
)""", re.VERBOSE)
_UPPER = re.compile(r"""[A-Z](?<![A-Za-z0-9_][A-Z])(?:
  [A-Z][0-9]{2}(?:\ ?[A-Z0-9]{4}){2,7}(?:\ ?[A-Z0-9]{1,3})?(?P<iban>)
 |[A-Z](?P<ns>\ ?)[0-9]{2}(?P=ns)[0-9]{2}(?P=ns)[0-9]{2}(?P=ns)[A-D](?P<gb_nino>)
 |[A-Z]{5}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?P<it_cf>)
 |(?<=[XYZ])-?[0-9]{7}-?[A-Z](?P<es_nie>)
)""", re.VERBOSE)
_COLONS = re.compile(r":(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}")
_HEX = frozenset("0123456789abcdefABCDEF")
_LOCAL_REVERSED = re.compile(r"[\w%+-](?:[\w%+-]|\.(?=[\w%+-]))*")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])")
_CONTEXT_REACH = 32


def _continues(text: str, end: int) -> bool:
    """The text goes on as a word or a number right after `end`."""
    if end >= len(text):
        return False
    c = text[end]
    return c.isalnum() or c == "_" or (c in ".-/" and text[end + 1:end + 2].isdigit())


@lru_cache(maxsize=4096)
def _phone_region(candidate: str) -> str | None:
    """The region of a valid phone number (US when it has no +CC), else None. Cached: a chat
    sends its history again with every turn, and phonenumbers takes some 50 µs a number."""
    try:
        number = phonenumbers.parse(candidate, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return (phonenumbers.region_code_for_number(number) or "001").lower()


def _phone(text: str, start: int, end: int) -> Finding | None:
    region = _phone_region(text[start:end])
    return None if region is None else Finding("phone", start, end, text[start:end], region)


def _international(text: str, start: int, end: int) -> Finding | None:
    """A +CC number, its candidate cut back group by group (the regex may take what follows)."""
    for _ in range(4):
        if sum(c.isdigit() for c in text[start:end]) < 7:
            return None
        if not _continues(text, end) and (found := _phone(text, start, end)):
            return found
        end = max(text.rfind(c, start, end) for c in " .-)(")
        while end > start and not text[end - 1].isdigit():
            end -= 1
    return None


def _national_id(text: str, start: int, end: int, detail: str) -> Finding | None:
    if NATIONAL_IDS[detail](text[start:end]):
        return Finding("national_id", start, end, text[start:end], detail)
    return None


def _number(text: str, m: re.Match[str]) -> Finding | None:
    kind, start, end = m.lastgroup, m.start(), m.end()
    if kind is None or _continues(text, end):
        return None
    value = text[start:end]
    if kind in ("phone", "phone_paren"):
        return _phone(text, start, end)
    if kind == "intl":
        return _international(text, start, end)
    if kind == "ssn":
        return _national_id(text, start, end, "us_ssn")
    if kind == "ipv4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return None
        return Finding("ip", start, end, value, "ipv4")
    if kind in ("card", "run"):
        digits = value.replace(" ", "").replace("-", "")
        if network := card_network(digits):
            return Finding("card", start, end, value, network)
        if kind == "run" and len(digits) == 15 and digits[0] in "12":
            return _national_id(text, start, end, "fr_nir")
        return _named_id(text, start, end) if kind == "run" else None
    if kind == "pnr":
        return _national_id(text, start, end, "se_pnr") or _national_id(text, start, end,
                                                                         "fi_hetu")
    if kind == "iban":
        if length := iban_length(value):
            return Finding("iban", start, start + length, value[:length])
        return None
    if kind == "gb_nino":
        return Finding("national_id", start, end, value, kind) if is_nino(value) else None
    return _national_id(text, start, end, kind)


def _emails(text: str) -> Iterator[Finding]:
    at = text.find("@")
    while at != -1:
        local = _LOCAL_REVERSED.match(text[max(0, at - 64):at][::-1])
        domain = _DOMAIN.match(text, at + 1)
        if local and domain:
            start = at - local.end()
            before = text[start - 1] if start else " "
            userinfo = before == ":" and "://" in text[max(0, start - 256):start]
            if not (userinfo or before.isalnum() or before in "_%+-"):
                yield Finding("email", start, domain.end(), text[start:domain.end()])
        at = text.find("@", at + 1)


def _ipv6(text: str) -> Iterator[Finding]:
    for m in _COLONS.finditer(text):
        start, end = m.span()
        while start > 0 and m.start() - start < 4 and text[start - 1] in _HEX:
            start -= 1
        value = text[start:end]
        if "::" not in value and value.count(":") != 7:
            continue
        if sum(1 for group in value.split(":") if group) < 3:
            continue
        before = text[start - 1] if start else " "
        port = value.count(":") == 7 and "::" not in value  # a whole address: ':' starts a port
        if before.isalnum() or before in "_:." or _continues(text, end) or (
                text[end:end + 1] == ":" and not port):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield Finding("ip", start, end, value, "ipv6")


def _named_id(text: str, start: int, end: int) -> Finding | None:
    """A bare number that is an id only after its name: `SSN 078051120`, `BSN: 123456782`."""
    if end - start not in (9, 11):
        return None
    before = text[max(0, start - _CONTEXT_REACH):start]
    lowered = before.lower()
    for detail, names in CONTEXT.items():
        for name in (*names, *NAMES_OF_ANY):
            at = lowered.rfind(name.lower())
            if at == -1 or (at and lowered[at - 1].isalnum()):
                continue
            following = at + len(name)
            if following < len(before) and before[following].isalnum():
                continue
            if found := _national_id(text, start, end, detail):
                return found
    return None


Scan = Callable[[str], Iterator[Finding]]


def _scan(pattern: re.Pattern[str]) -> Scan:
    def scan(text: str) -> Iterator[Finding]:
        for m in pattern.finditer(text):
            if found := _number(text, m):
                yield found
    return scan


_digits, _plus, _upper = _scan(_DIGITS), _scan(_PLUS), _scan(_UPPER)
# Which passes can report each entity.
PASSES: dict[str, tuple[Scan, ...]] = {
    "email": (_emails,),
    "phone": (_digits, _plus),
    "card": (_digits,),
    "iban": (_upper,),
    "national_id": (_digits, _upper),
    "ip": (_digits, _ipv6),
}


def find_structured(text: str, entities: frozenset[str]) -> list[Finding]:
    """The structured entities (but secrets) of `entities` found in `text` (may overlap)."""
    passes = dict.fromkeys(p for e in entities if e in PASSES for p in PASSES[e])
    return [f for scan in passes for f in scan(text) if f.entity in entities]
