"""Validators for the numbers that identify a person or an account: payment cards (Luhn and the
networks' prefixes and lengths), IBANs and national identifiers, all with python-stdnum but the
UK's NINO, which python-stdnum lacks (HMRC's rules, National Insurance Manual NIM39110).

National identifiers found:

| detail     | country | found as                                      | validated by (stdnum)  |
|------------|---------|-----------------------------------------------|------------------------|
| `us_ssn`   | US      | 078-05-1120, 078 05 1120; 9 digits after SSN  | us.ssn                 |
| `gb_nino`  | UK      | QQ 12 34 56 C, QQ123456C                      | (HMRC's letter rules)  |
| `es_dni`   | ES      | 12345678Z                                     | es.dni: check letter   |
| `es_nie`   | ES      | X1234567L                                     | es.nie: check letter   |
| `it_cf`    | IT      | RSSMRA85T10A562S                              | it.codicefiscale       |
| `fr_nir`   | FR      | 15 digits from 1 or 2, spaced or not (2A, 2B) | fr.nir: key mod 97     |
| `be_nn`    | BE      | 85.07.30-033.28; 11 digits after its name     | be.nn: date, mod 97    |
| `fi_hetu`  | FI      | 131052-308T                                   | fi.hetu: check char    |
| `se_pnr`   | SE      | 811228-9874, 19811228-9874                    | se.personnummer: Luhn  |
| `ie_pps`   | IE      | 1234567T, 1234567TW                           | ie.pps: check letter   |
| `nl_bsn`   | NL      | 9 digits after BSN, burgerservicenummer       | nl.bsn: 11-proof       |
| `pl_pesel` | PL      | 11 digits after PESEL                         | pl.pesel               |
| `de_idnr`  | DE      | 11 digits after Steuer-ID, IdNr, ...          | de.idnr                |

A bare run of 9 or 11 digits is an order number as often as an id: one check digit lets about
one number in ten through. So SSNs without dashes, BSNs, PESELs, German tax ids and Belgian
numbers without dots are reported only after their names (`CONTEXT`, within 32 characters),
or after a name that says "national id" (`NAMES_OF_ANY`).
Left out: Denmark's CPR (no check digit since 2007, the same shape as a Swedish number) and the
ids that are bare digits with no name in front.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import stdnum.be.iban
import stdnum.be.nn
import stdnum.de.idnr
import stdnum.es.ccc
import stdnum.es.dni
import stdnum.es.nie
import stdnum.fi.hetu
import stdnum.fr.nir
import stdnum.iban
import stdnum.ie.pps
import stdnum.it.codicefiscale
import stdnum.luhn
import stdnum.nl.bsn
import stdnum.no.kontonr
import stdnum.numdb
import stdnum.pl.pesel
import stdnum.se.personnummer
import stdnum.us.ssn
from stdnum.util import get_cc_module

from veteran.policies.memo import Memoised

# Each memoised (memo.py): python-stdnum takes 6 to 20 us an id.
NATIONAL_IDS: dict[str, Callable[[str], bool]] = {detail: Memoised(valid) for detail, valid in {
    "us_ssn": stdnum.us.ssn.is_valid,
    "es_dni": stdnum.es.dni.is_valid,
    "es_nie": stdnum.es.nie.is_valid,
    "it_cf": stdnum.it.codicefiscale.is_valid,
    "fr_nir": stdnum.fr.nir.is_valid,
    "be_nn": stdnum.be.nn.is_valid,
    "fi_hetu": stdnum.fi.hetu.is_valid,
    "se_pnr": stdnum.se.personnummer.is_valid,
    "ie_pps": stdnum.ie.pps.is_valid,
    "nl_bsn": stdnum.nl.bsn.is_valid,
    "pl_pesel": stdnum.pl.pesel.is_valid,
    "de_idnr": stdnum.de.idnr.is_valid,
}.items()}

# The names before a bare number that make it an id, matched as whole words as written here, in
# lower or upper case, capitalized or titled.
CONTEXT: dict[str, tuple[str, ...]] = {
    "us_ssn": ("ssn", "ssn#", "social security", "social security number"),
    "nl_bsn": ("bsn", "burgerservicenummer", "sofinummer"),
    "pl_pesel": ("pesel",),
    "de_idnr": ("Steuer-ID", "SteuerID", "Steueridentifikationsnummer", "IdNr",
                "Identifikationsnummer", "Steuer-Identifikationsnummer"),
    "be_nn": ("rijksregisternummer", "numéro national", "numéro de registre national",
              "insz", "niss", "national number"),
}

# Names that say "an id" without saying whose: each id above that validates is tried in turn.
NAMES_OF_ANY = ("national_id", "national id", "national identification number",
                "personal id number", "identity number")

# HMRC NIM39110: D, F, I, Q, U and V are never a prefix letter, O never the second; these
# prefixes are not allocated.
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")
_NINO_UNUSED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})

# (first digits from, to), lengths, network: the IIN ranges of the cards in use.
_NETWORKS: tuple[tuple[int, int, tuple[int, ...], str], ...] = (
    (34, 34, (15,), "amex"), (37, 37, (15,), "amex"),
    (300, 305, (14, 15, 16, 17, 18, 19), "diners"), (36, 36, (14, 15, 16, 17, 18, 19), "diners"),
    (38, 39, (14, 15, 16, 17, 18, 19), "diners"),
    (35, 35, (16, 17, 18, 19), "jcb"), (1800, 1800, (15,), "jcb"),
    (2131, 2131, (15,), "jcb"),
    (4, 4, (13, 16, 19), "visa"),
    (51, 55, (16,), "mastercard"), (2221, 2720, (16,), "mastercard"),
    (6011, 6011, (16, 17, 18, 19), "discover"), (644, 649, (16, 17, 18, 19), "discover"),
    (65, 65, (16, 17, 18, 19), "discover"),
    (62, 62, (16, 17, 18, 19), "unionpay"),
    (50, 50, (13, 14, 15, 16, 17, 18, 19), "maestro"),
    (56, 69, (13, 14, 15, 16, 17, 18, 19), "maestro"),
)
# The same ranges by the number's first digit, each with its prefix's size: most candidates are
# turned down here, before Luhn.
_BY_FIRST: dict[str, tuple[tuple[int, int, int, tuple[int, ...], str], ...]] = {
    first: tuple((len(str(low)), low, high, lengths, network)
                 for low, high, lengths, network in _NETWORKS
                 if str(low)[0] <= first <= str(high)[0])
    for first in "0123456789"
}


def card_network(digits: str) -> str | None:
    """The network of a card number (digits only) whose prefix and length a network issues
    and that passes Luhn; None otherwise."""
    if not 13 <= len(digits) <= 19:
        return None
    for size, low, high, lengths, network in _BY_FIRST[digits[0]]:
        if len(digits) in lengths and low <= int(digits[:size]) <= high:
            return network if stdnum.luhn.is_valid(digits) else None
    return None




def _belgian(iban: str) -> bool:
    """stdnum.be.iban's checks beyond the IBAN's: the BBAN's own mod 97, a bank that exists."""
    return f"{int(iban[4:-2]) % 97 or 97:02}" == iban[-2:] and bool(stdnum.be.iban.info(iban))


# What python-stdnum's country modules (`stdnum.CC.iban`) check beyond the IBAN's own structure
# and MOD 97-10, called without stdnum.iban.validate again (60 us, most of it a registry
# lookup); a country whose module is not here gets stdnum.iban.is_valid whole. Memoised: a
# Belgian bank is looked up in stdnum's registry too.
_COUNTRY_CHECKS: dict[str, Callable[[str], bool]] = {
    "BE": Memoised(_belgian),
    "ES": lambda iban: stdnum.es.ccc.is_valid(iban[4:]),
    "ME": lambda iban: int(iban[4:]) % 97 == 1,
    "NO": lambda iban: stdnum.no.kontonr.is_valid(iban[4:]),
}
_stdnum_iban = Memoised(stdnum.iban.is_valid)
# An IBAN's letters as numbers (A=10 ... Z=35), for ISO 7064 MOD 97-10.
_AS_NUMBERS = str.maketrans({c: str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
_BBAN_PARTS = re.compile(r"([1-9][0-9]*)!([nac])")
_BBAN_CLASSES = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


@cache  # keyed by two capital letters
def _iban_format(country: str) -> tuple[int, Callable[[str], object],
                                        Callable[[str], bool] | None] | None:
    """A country's IBAN from python-stdnum's registry (its `iban` numdb): its length, its BBAN's
    fullmatch, and the country's further checks when stdnum has them."""
    found = stdnum.numdb.get("iban").info(country)
    structure = found[0][1].get("bban") if len(found) == 1 and found[0][0] == country else None
    if not structure:
        return None
    parts = _BBAN_PARTS.findall(structure)
    bban = "".join(f"{_BBAN_CLASSES[kind]}{{{count}}}" for count, kind in parts)
    more = None
    if get_cc_module(country.lower(), "iban") is not None:
        more = _COUNTRY_CHECKS.get(country, _stdnum_iban)
    return 4 + sum(int(count) for count, _ in parts), re.compile(bban).fullmatch, more


def _is_iban(compact: str, pattern: Callable[[str], object],
             more: Callable[[str], bool] | None) -> bool:
    """`stdnum.iban.is_valid(compact)` for an IBAN of the right length: its BBAN's structure and
    MOD 97-10 here (stdnum's own takes 50 us, most of it looking the country up again), then
    the country's own checks."""
    if not compact[2:4].isdigit() or pattern(compact[4:]) is None:
        return False
    if int((compact[4:] + compact[:4]).translate(_AS_NUMBERS)) % 97 != 1:
        return False
    return more is None or more(compact)


def iban_length(candidate: str) -> int:
    """The length of the longest valid IBAN that `candidate` (capital letters, digits, single
    spaces between groups) starts with, cut at a group's end or, before the first space,
    anywhere; 0 when there is none."""
    form = _iban_format(candidate[:2])
    if form is None:
        return 0
    size, pattern, more = form
    cut, kept = 0, 0
    while kept < size and cut < len(candidate):  # cut: after the size-th letter or digit
        kept += candidate[cut] != " "
        cut += 1
    if kept < size or cut < len(candidate) and candidate[cut] != " " and " " in candidate[:cut]:
        return 0
    return cut if _is_iban(candidate[:cut].replace(" ", ""), pattern, more) else 0


def is_nino(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    return _NINO.fullmatch(compact) is not None and compact[:2] not in _NINO_UNUSED
