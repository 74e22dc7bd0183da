"""E-mail addresses, phone numbers, payment cards, IBANs, national identifiers and IP addresses:
candidates found by a few compiled regexes, each kept only when a maintained validator agrees
(phonenumbers, python-stdnum, `ipaddress`; identifiers.py has the table of ids).

Why the regexes look as they do (measured on 1 MB of mixed prose, chat, code and logs): Python's
`re` skips quickly only to a pattern's first character class, and tries every alternative at
every position otherwise (one alternation of a dozen named shapes: 0.9 s a megabyte). So one
pass (`_SCAN`) starts with one class, `[0-9A-Z+(]`, refuses at once a position inside a word
or a number (a fixed lookbehind: most of the positions the class stops at), then each family
(digits, capitals, `+`/`(`) checks the character after the first and only then tries its
shapes, whose kind is the empty group that closes the match (`lastgroup`). One pass where there
were three (digits, capitals, `+`) takes a 1 KB text from 33 to 10 us; `_scan` keeps the
three passes' results (a family's match may start inside another's). IPv6 starts from each `:`
and e-mails from each `@`, both literal searches, run only when the text has one.

A match that runs into the next number (`4111 1111 1111 1111 4111 ...`, `+4930901820  4111...`)
fails as a whole; only then is it cut back, at its separators, to its longest prefix that is a
match and valid itself, and what follows is scanned again (`_prefix`, `_international`). One
that starts inside a finding is taken whole or not at all, and a finding never hides from the
other families what starts inside it: the overlaps are settled by entities.py, where a valid
IBAN wins over the card number among its digits.

Validators, cheap first: card numbers by their network's prefix and length before Luhn, IBANs
by their country's length and BBAN shape from python-stdnum's registry and MOD 97-10 before
stdnum's own country checks, phone numbers by phones.py (phonenumbers' metadata, not its
parser: 3 to 6 us, not 60 to 130), bare 9 or 11 digit ids only when a name stands before them.
The dearer library checks are memoised (memo.py).

Phones: US numbers as written in the US ((415) 555-0100, 415-555-0100, 415.555.0100, the +1
form, extensions), any country's in the international form (+44 20 7946 0958), each valid by
phonenumbers' rules; ten bare digits or another country's national form (020 7946 0958) are not
reported, nor the 00 form (0044 20 7946 0958): parsed as a US number, phonenumbers refuses it.
IPv4: four dotted numbers up to 255, not part of a longer dotted run (version 1.2.3.4.5); IPv6
with at least three groups (not `::1`, not `std::vector`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from veteran.policies import phones
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
# One pass for every shape that starts with a digit, a capital, `+` or `(`: the class takes the
# first character and refuses at once a position inside a word or a number (most of them), then
# each family looks back at that character, checks the one after it, and tries its shapes. The
# kind is the empty group that closes the match.
_SCAN = re.compile(rf"""[0-9A-Z+(](?<![0-9A-Za-z_][0-9A-Z+(])(?:
 (?<=[0-9])(?<!\.[0-9])(?=[0-9\ .])(?:
  [0-9]{{2}}[ .-][0-9]{{3}}[ .-][0-9]{{4}}{_EXT}(?P<phone>)
 |[0-9]{{2}}(?P<ss>[- ])[0-9]{{2}}(?P=ss)[0-9]{{4}}(?P<ssn>)
 |[0-9]{{0,2}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}(?P<ipv4>)
 |[0-9]{{3}}(?:(?P<cs>[ -])[0-9]{{4}}(?P=cs)[0-9]{{4}}(?P=cs)[0-9]{{4}}(?:(?P=cs)[0-9]{{3}})?
    |(?P<as>[ -])[0-9]{{6}}(?P=as)[0-9]{{4,5}})(?P<card>)
 |(?<=[12])(?:\ [0-9]{{2}}\ [0-9]{{2}}\ (?:[0-9]{{2}}|2[AB])\ [0-9]{{3}}\ [0-9]{{3}}\ [0-9]{{2}}
    |[0-9]{{4}}2[AB][0-9]{{8}})(?P<fr_nir>)
 |[0-9]\.[0-9]{{2}}\.[0-9]{{2}}-[0-9]{{3}}\.[0-9]{{2}}(?P<be_nn>)
 |(?:[0-9]{{2}})?[0-9]{{5}}[-+][0-9]{{3}}[0-9A-Y](?P<pnr>)
 |[0-9]{{5}}[A-FU-Y][0-9]{{3}}[0-9A-Y](?P<fi_hetu>)
 |[0-9]{{7}}-?[A-Z](?P<es_dni>)
 |[0-9]{{6}}[A-W][A-IW]?(?P<ie_pps>)
 |(?<=0)0[1-9][0-9 ().-]{{5,20}}[0-9](?P<intl>)
 |[0-9]{{8,18}}(?P<run>)
 )
|(?<=[A-Z])(?=[A-Z0-9-])(?:
  [A-Z][0-9]{{2}}(?:\ ?[A-Z0-9]{{4}}){{2,7}}(?:\ ?[A-Z0-9]{{1,3}})?(?P<iban>)
 |[A-Z](?P<ns>\ ?)[0-9]{{2}}(?P=ns)[0-9]{{2}}(?P=ns)[0-9]{{2}}(?P=ns)[A-D](?P<gb_nino>)
 |[A-Z]{{5}}[0-9LMNPQRSTUV]{{2}}[ABCDEHLMPRST][0-9LMNPQRSTUV]{{2}}[A-Z][0-9LMNPQRSTUV]{{3}}[A-Z]
    (?P<it_cf>)
 |(?<=[XYZ])-?[0-9]{{7}}-?[A-Z](?P<es_nie>)
 )
|(?<=[+(])(?<!\+[+(])(?=[0-9])(?:
  (?<=\+)1[ .-]?(?:\([0-9]{{3}}\)[ .-]?|[0-9]{{3}}[ .-])[0-9]{{3}}[ .-][0-9]{{4}}{_EXT}
    (?P<phone_plus>)
 |(?<=\()[0-9]{{3}}\)[ .-]?[0-9]{{3}}[ .-][0-9]{{4}}{_EXT}(?P<phone_paren>)
 |(?<=\+)[1-9][0-9 ().-]{{5,20}}[0-9](?P<intl_plus>)
 )
)""", re.VERBOSE)
# The entities each kind of `_SCAN` match may be.
_KINDS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("phone", "phone_plus", "phone_paren", "intl", "intl_plus"),
                    frozenset({"phone"})),
    **dict.fromkeys(("ssn", "fr_nir", "be_nn", "pnr", "fi_hetu", "es_dni", "ie_pps", "gb_nino",
                     "it_cf", "es_nie"), frozenset({"national_id"})),
    "ipv4": frozenset({"ip"}), "card": frozenset({"card"}), "iban": frozenset({"iban"}),
    "run": frozenset({"card", "national_id"}),
}
_SCANNED = frozenset().union(*_KINDS.values())
_PHONES = frozenset({"phone", "phone_plus", "phone_paren"})  # the US shapes, judged whole
# The three families of `_SCAN` by their first character, and what may start another family's
# match inside one of theirs.
_FAMILY = {**dict.fromkeys("0123456789", 0), **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
           "+": 2, "(": 2}
_OTHERS = (re.compile(r"[A-Z+(]"), re.compile(r"[0-9+(]"), re.compile(r"[0-9A-Z]"))
_COLONS = re.compile(r":(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}")
_HEX = frozenset("0123456789abcdefABCDEF")
_LOCAL_REVERSED = re.compile(r"[\w%+-](?:[\w%+-]|\.(?=[\w%+-]))*")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])")
_CONTEXT_REACH = 32
_LONGEST_PHONE = 40  # characters a phone candidate may take, its extension included
_ANY_NAME = re.compile("|".join(re.escape(name.lower()) for names in (*CONTEXT.values(),
                                                                      NAMES_OF_ANY)
                                for name in names))


def _continues(text: str, end: int) -> bool:
    """The text goes on as a word or a number right after `end`."""
    if end >= len(text):
        return False
    c = text[end]
    return c.isalnum() or c == "_" or (c in ".-/" and text[end + 1:end + 2].isdigit())


def _phone(text: str, start: int, end: int) -> Finding | None:
    found = phones.region(text[start:end])
    return None if found is None else Finding("phone", start, end, text[start:end], found)


def _international(text: str, start: int, end: int) -> Finding | None:
    """A +CC number, its candidate cut back group by group (the regex may take what follows:
    `+4930901820 4111111111111111`, `+4930901820 (415) 555-2671`)."""
    for _ in range(4):
        if sum(c.isdigit() for c in text[start:end]) < 7:
            return None
        if (not _continues(text, end) and text.count("(", start, end) == text.count(")", start, end)
                and (found := _phone(text, start, end))):
            return found
        end = max(text.rfind(c, start, end) for c in " .-)(")
        while end > start and not text[end - 1].isdigit():
            end -= 1
        if end <= start:
            return None
    return None


def _national_id(text: str, start: int, end: int, detail: str) -> Finding | None:
    if NATIONAL_IDS[detail](text[start:end]):
        return Finding("national_id", start, end, text[start:end], detail)
    return None


def _number(text: str, m: re.Match[str], entities: frozenset[str],
            cut: bool = True) -> Finding | None:
    """The finding a candidate is, or (`cut`) the one its longest valid prefix is (the
    candidate may have run into the next number: `4111 1111 1111 1111 198.51.100.77`)."""
    kind, start, end = m.lastgroup, m.start(), m.end()
    if kind is None or not entities & _KINDS[kind]:
        return None
    if kind in ("intl", "intl_plus"):  # cut back group by group, each cut checked
        return _international(text, start, end)
    if kind == "iban":  # the longest valid prefix already, which may end at a space
        length = iban_length(text[start:end])
        if not length or _continues(text, end) and text[start + length] != " ":
            return None
        return Finding("iban", start, start + length, text[start:start + length])
    if not _continues(text, end) and (found := _whole(text, m, kind)):
        return found
    if cut and (kind == "card" and end - start > 19 or kind in _PHONES and "x" in m[0]):
        return _prefix(text, m, entities)  # its optional end may be the next number's start
    return None


def _prefix(text: str, m: re.Match[str], entities: frozenset[str]) -> Finding | None:
    """The finding of the longest prefix of a failed candidate that ends before one of its
    separators and is a candidate itself (`_SCAN` matched up to there only): a card number
    without the 19-digit form's last group, a phone number without its extension."""
    start, cut = m.start(), m.end()
    while (cut := max(text.rfind(c, start + 1, cut) for c in " .-")) > start:
        if not text[cut - 1].isalnum():
            continue
        shorter = _SCAN.match(text, start, cut)
        if shorter is None or (kind := shorter.lastgroup) is None or not entities & _KINDS[kind]:
            continue
        if kind not in ("intl", "intl_plus", "iban") and not _continues(text, shorter.end()) and (
                found := _whole(text, shorter, kind)):
            return found
    return None


def _whole(text: str, m: re.Match[str], kind: str) -> Finding | None:
    """The finding a candidate of `kind` (not an international number, not an IBAN) is whole."""
    start, end = m.span()
    value = text[start:end]
    if kind in _PHONES:
        return _phone(text, start, end)
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
    if _ANY_NAME.search(lowered) is None:  # most numbers: no name at all, so no loop
        return None
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


def _scan(text: str, entities: frozenset[str]) -> list[Finding]:
    """The findings of `_SCAN`'s matches, taken as if each family had a pass of its own: a
    family's matches never overlap, but one family's may start inside another's (the digits of
    `+1 415-555-0132`, a card number after a phone number that a `+` candidate ran into). What
    follows a finding cut back from its match is scanned again; so is what a failed match that
    started inside a finding took (it may have run into the next number:
    `+44 20 7946 0958 4111 1111 1111 1111`), and what one that started there took, and so on."""
    found: list[Finding] = []
    ends = [0, 0, 0]  # where each family may match again
    covered = 0  # where the findings so far end
    again = 0  # up to where a failed match does not hide what starts inside it
    at = 0
    while (m := _SCAN.search(text, at)) is not None:
        start, end = m.span()
        family = _FAMILY[text[start]]
        if start < ends[family]:
            at = start + 1
            continue
        # a match that starts inside a finding is taken whole or not at all: its prefix would
        # be a number made of the finding's last digits and the next number's first
        finding = _number(text, m, entities, start >= covered)
        if finding and finding.entity in entities:
            if start < covered:
                _cut_before(text, found, finding)
            found.append(finding)
            end = finding.end
            covered = max(covered, end)
            again = max(again, end)
        elif start < again:  # it may have run into the next number: scan what it took again
            again = max(again, end)
            end = start + 1
        ends[family] = end
        inner = _OTHERS[family].search(text, start + 1, end)
        at = end if inner is None else inner.start()
    return found


def _cut_before(text: str, found: list[Finding], then: Finding) -> None:
    """An international number that ran into the start of the next finding is cut back before
    it, when what is left is still valid (`+4930901820 5500 0055 5555 5559`: German numbers
    have many lengths, and `+4930901820 5500` is one)."""
    for at in range(len(found) - 1, -1, -1):  # by start
        before = found[at]
        if before.start + _LONGEST_PHONE < then.start:
            return
        if (before.entity == "phone" and text[before.start] == "+"
                and before.start < then.start < before.end < then.end):
            end = then.start
            while end > before.start and not text[end - 1].isdigit():
                end -= 1
            if shorter := _international(text, before.start, end):
                found[at] = shorter


def find_structured(text: str, entities: frozenset[str]) -> list[Finding]:
    """The structured entities (but secrets) of `entities` found in `text` (may overlap)."""
    found: list[Finding] = []
    if entities & _SCANNED:
        found = _scan(text, entities)
    if "email" in entities and "@" in text:
        found += _emails(text)
    if "ip" in entities and ":" in text:
        found += _ipv6(text)
    return found
