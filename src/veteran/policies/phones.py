"""Is a phone-shaped candidate a valid number, and whose: phonenumbers' answer, for a tenth of
its cost.

`phonenumbers.parse` + `is_valid_number` + `region_code_for_number` take 60 to 130 us a number:
parsing is written for any input a person might type, and every check looks its pattern up in
`re`'s cache again. The candidates here come from our own regexes (digits and ` ().-`, a `+`
or nothing before them, an extension after `x` or `ext`), so `region` does what `parse` does to
such a string, then what `is_valid_number` does, with the library's own metadata, its patterns
compiled once per region (`_plan`): 3 to 6 us a number. What the short way does not cover (a
number whose national part starts with the region's national prefix, `+44 (0) 20...`; one
written without `+` that starts with 1 or with the US's 011) goes to the library itself
(`library_region`); tests/policies/test_phones.py holds the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberDesc

from veteran.policies.memo import Memoised

# The number types `phonenumbers._number_type_helper` tries (mobile only when its pattern is not
# fixed_line's): a number is valid when its general description and one of these match. Which
# one does not matter here, so the common ones come first.
_TYPES = ("fixed_line", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number",
          "pager", "uan", "voicemail")
_NON_GEO = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
_MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
_DIGIT_DROPS = str.maketrans("", "", " ().-+")

# Possible lengths (none: any), and its pattern's fullmatch.
_Desc = tuple[frozenset[int], Callable[[str], re.Match[str] | None]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's numbering plan, as `phonenumbers` reads it, compiled."""

    region: str
    leading: re.Pattern[str] | None  # the leading digits that pick this region among its code's
    general: _Desc
    types: tuple[_Desc, ...]
    national_prefix: re.Pattern[str] | None  # national_prefix_for_parsing


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern).fullmatch


@cache  # keyed by country codes, a few hundred at most
def _plans(country_code: int) -> tuple[_Plan | None, ...]:
    """The plans of a country code's regions, its main region first."""
    return tuple(_plan(country_code, name) for name in COUNTRY_CODE_TO_REGION_CODE[country_code])


def _plan(country_code: int, region: str) -> _Plan | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None or (general := _desc(metadata.general_desc)) is None:
        return None
    names = _TYPES if metadata.same_mobile_and_fixed_line_pattern else ("mobile", *_TYPES)
    types = tuple(d for name in names if (d := _desc(getattr(metadata, name))) is not None)
    prefix = metadata.national_prefix_for_parsing
    leading = metadata.leading_digits
    return _Plan(region, None if leading is None else re.compile(leading), general, types,
                 re.compile(prefix) if prefix else None)


def _typed(plan: _Plan, nsn: str) -> bool:
    """`_number_type_helper(nsn, metadata) != UNKNOWN`."""
    size = len(nsn)
    lengths, fullmatch = plan.general
    if lengths and size not in lengths or fullmatch(nsn) is None:
        return False
    for lengths, fullmatch in plan.types:
        if (not lengths or size in lengths) and fullmatch(nsn) is not None:
            return True
    return False


def _split(digits: str) -> tuple[int, str] | None:
    """The country code a `+` number starts with and the rest (`_extract_country_code`)."""
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def region(candidate: str) -> str | None:
    """The region of a valid phone number (lower case; US when it has no +CC, 001 for the
    non-geographic codes), else None: what `library_region` says."""
    main = candidate.split("x", 1)[0].split("e", 1)[0]
    digits = main.translate(_DIGIT_DROPS)
    if not digits.isdigit() or len(digits) < 3 or digits[0] == "0" and main.startswith("+"):
        return library_region(candidate)
    if main.startswith("+"):
        if (split := _split(digits)) is None:
            return None  # parse: "Could not interpret numbers after plus-sign"
        code, nsn = split
    elif digits[0] == "1" or digits.startswith("011"):
        return library_region(candidate)
    else:
        code, nsn = 1, digits
    plans = _plans(code)
    main_plan = plans[0]
    if (main_plan is None or len(nsn) < 2
            or main_plan.national_prefix is not None and main_plan.national_prefix.match(nsn)):
        return library_region(candidate)
    if len(nsn) > _MAX_NSN:
        return None
    # region_code_for_number: the only region, else the first whose leading digits start the
    # number or, without leading digits, whose plan it fits; then is_valid_number_for_region.
    if len(plans) == 1:
        return main_plan.region.lower() if _typed(main_plan, nsn) else None
    for plan in plans:
        if plan is None:
            continue
        if plan.leading is None:
            if _typed(plan, nsn):
                return plan.region.lower()
        elif plan.leading.match(nsn):
            return plan.region.lower() if _typed(plan, nsn) else None
    return None


@Memoised
def library_region(candidate: str) -> str | None:
    """phonenumbers' own answer: `parse(candidate, "US")`, `is_valid_number`, and its region."""
    try:
        number = phonenumbers.parse(candidate, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return (phonenumbers.region_code_for_number(number) or _NON_GEO).lower()
