"""Resident identity numbers (居民身份证号码, GB 11643-1999): validation, construction, masking.

An identity number is 18 characters: a 6-digit administrative region code (GB/T 2260), the birth
date as YYYYMMDD (positions 7–14), a 3-digit sequence code (odd for men, even for women) and a
check character computed with ISO 7064 MOD 11-2 over the first 17 digits (`0`–`9` or `X` for 10).

Decision on a lowercase `x`: it is **refused** by `validate_identity_number`. The person id is the
Kafka key and the registry's primary key, so one person must have exactly one spelling; a client
that accepts typed input calls `normalize_identity_number` first (strip, upper-case).
"""

from __future__ import annotations

from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
"""ISO 7064 MOD 11-2 weights of positions 1–17 (2^(18-i) mod 11)."""

CHECK_CHARACTERS = "10X98765432"
"""Check character by (weighted sum mod 11)."""

PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82", "83",
})
"""First two digits of a GB/T 2260 region code (83 is used by residence permits of Taiwan residents)."""

EARLIEST_BIRTH = date(1800, 1, 1)
"""The standard's own example 440524188001010014 is born in 1880; earlier years are typing errors."""


def check_character(first17: str) -> str:
    """The MOD 11-2 check character of 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need exactly 17 digits, got {len(first17)} characters")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def birth_date_of(number: str) -> date:
    """Birth date encoded in a (valid) identity number."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def validate_identity_number(number: object, *, today: date | None = None) -> str | None:
    """Return None if `number` is a valid identity number, else the specific reason it is not.

    `today` bounds the birth date (defaults to the system date); pass it for deterministic checks.
    """
    if not isinstance(number, str):
        return f"must be a string, got {type(number).__name__}"
    if len(number) != 18:
        return f"must be 18 characters, got {len(number)}"
    body, last = number[:17], number[17]
    if not (body.isascii() and body.isdigit()):
        bad = next(i for i, c in enumerate(body, start=1) if not ("0" <= c <= "9"))
        return f"character {bad} is {body[bad - 1]!r}: the first 17 characters must be digits"
    if last == "x":
        return "check character is a lowercase 'x': send an uppercase 'X'"
    if not ("0" <= last <= "9" or last == "X"):
        return f"check character {last!r} must be a digit or 'X'"
    if body[:2] not in PROVINCE_CODES:
        return f"region code {body[:6]} does not start with a province code (GB/T 2260)"
    raw_birth = body[6:14]
    try:
        birth = birth_date_of(number)
    except ValueError:
        return f"birth date {raw_birth} is not a date"
    if birth < EARLIEST_BIRTH:
        return f"birth date {birth.isoformat()} is before {EARLIEST_BIRTH.isoformat()}"
    if birth > (today or date.today()):
        return f"birth date {birth.isoformat()} is in the future"
    expected = check_character(body)
    if last != expected:
        return f"check digit should be {expected}, got {last}"
    return None


def is_valid_identity_number(number: object, *, today: date | None = None) -> bool:
    return validate_identity_number(number, today=today) is None


def normalize_identity_number(number: str) -> str:
    """Canonical spelling of typed input: surrounding blanks removed, `x` upper-cased."""
    return number.strip().upper()


def make_identity_number(region6: str, birth: date, seq3: int | str) -> str:
    """Build a valid identity number (computing the check character), e.g. for the generator."""
    if len(region6) != 6 or not region6.isdigit():
        raise ValueError(f"region code must be 6 digits, got {region6!r}")
    seq = int(seq3)
    if not 0 <= seq <= 999:
        raise ValueError(f"sequence code must be 0..999, got {seq3!r}")
    first17 = f"{region6}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


def mask_identity_number(number: str) -> str:
    """For logs: keep the first 6 and last 4 characters (`110105********002X`); mask short input fully."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
