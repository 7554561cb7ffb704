"""Resident identity numbers (GB 11643-1999): check digit, birth date, length, masking."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identity import (
    check_character,
    make_identity_number,
    mask_identity_number,
    normalize_identity_number,
    validate_identity_number,
)

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_the_standards_own_examples_are_valid(number: str) -> None:
    assert validate_identity_number(number, today=TODAY) is None


def test_check_character_by_hand() -> None:
    # 1·7+1·9+0·10+1·5+0·8+5·4+1·2+9·1+4·6+9·3+1·7+2·9+3·10+1·5+0·8+0·4+2·2 = 167; 167 mod 11 = 2 → "X"
    assert check_character("11010519491231002") == "X"
    # 4·7+4·9+0·10+5·5+2·8+4·4+1·2+8·1+8·6+0·3+0·7+1·9+0·10+1·5+0·8+0·4+1·2 = 195; 195 mod 11 = 8 → "4"
    assert check_character("44052418800101001") == "4"


def test_make_identity_number_computes_the_check_digit() -> None:
    assert make_identity_number("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert make_identity_number("440524", date(1880, 1, 1), "001") == "440524188001010014"


@pytest.mark.parametrize(("number", "reason"), [
    ("110105194912310021", "check digit should be X, got 1"),
    ("110105194912310023", "check digit should be X, got 3"),
    ("11010519491331002X", "birth date 19491331 is not a date"),
    ("11010519000229002X", "birth date 19000229 is not a date"),  # 1900 is not a leap year
    ("11010519491231002", "must be 18 characters, got 17"),
    ("11010519491231002XX", "must be 18 characters, got 19"),
    ("1101051949123100AX", "character 17 is 'A': the first 17 characters must be digits"),
    ("11010519491231002Y", "check character 'Y' must be a digit or 'X'"),
    ("99010519491231002X", "region code 990105 does not start with a province code (GB/T 2260)"),
])
def test_invalid_numbers_say_why(number: str, reason: str) -> None:
    assert validate_identity_number(number, today=TODAY) == reason


def test_a_leap_day_birth_is_a_date() -> None:
    assert validate_identity_number(make_identity_number("500240", date(2000, 2, 29), 17), today=TODAY) is None


def test_a_birth_date_in_the_future_is_refused() -> None:
    number = make_identity_number("500240", date(2026, 11, 23), 1)
    assert validate_identity_number(number, today=TODAY) == "birth date 2026-11-23 is in the future"
    assert validate_identity_number(number, today=date(2026, 11, 23)) is None


def test_lowercase_x_is_refused_and_normalize_fixes_it() -> None:
    assert validate_identity_number("11010519491231002x", today=TODAY) == (
        "check character is a lowercase 'x': send an uppercase 'X'")
    assert normalize_identity_number(" 11010519491231002x ") == "11010519491231002X"


def test_not_a_string() -> None:
    assert validate_identity_number(11010519491231002, today=TODAY) == "must be a string, got int"


def test_mask_keeps_the_first_six_and_last_four() -> None:
    assert mask_identity_number("11010519491231002X") == "110105********002X"
    assert mask_identity_number("12345") == "*****"


@given(region=st.sampled_from(["110105", "500240", "440524", "650102"]),
       birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY), seq=st.integers(0, 999),
       wrong=st.sampled_from("0123456789X"))
def test_made_numbers_are_valid_and_any_other_check_character_is_not(region: str, birth: date, seq: int,
                                                                     wrong: str) -> None:
    number = make_identity_number(region, birth, seq)
    assert validate_identity_number(number, today=TODAY) is None
    if wrong != number[-1]:
        assert validate_identity_number(number[:-1] + wrong, today=TODAY) == (
            f"check digit should be {number[-1]}, got {wrong}")
