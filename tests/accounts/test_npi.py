"""The NPI check (domain.md, "Licensing and credentials"): 10 digits, first 1 or 2, Luhn over 80840 + nine."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.npi import is_valid_npi, npi_check_digit, npi_problem

nine_digits = st.text(alphabet="0123456789", min_size=8, max_size=8).flatmap(
    lambda rest: st.sampled_from(["1", "2"]).map(lambda first: first + rest))


def test_worked_example_from_domain_md():
    assert npi_check_digit("123456789") == 3
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567890")


@pytest.mark.parametrize(("value", "problem"), [
    ("123456789", "exactly 10 digits"),
    ("12345678931", "exactly 10 digits"),
    ("12345678a3", "exactly 10 digits"),
    ("１２３４５６７８９３", "exactly 10 digits"),  # full-width digits are not ASCII digits
    ("3234567893", "starts with 1 or 2"),
    ("1234567890", "check digit"),
])
def test_invalid_npis_name_their_problem(value, problem):
    assert problem in npi_problem(value)


def _luhn_with_constant_24(npi: str) -> bool:
    """domain.md's equivalent form: the Luhn sum of the ten digits plus 24 is a multiple of 10."""
    total = 24
    for index, char in enumerate(reversed(npi)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


@given(nine_digits)
def test_the_computed_check_digit_always_makes_a_valid_npi(first_nine):
    npi = first_nine + str(npi_check_digit(first_nine))
    assert is_valid_npi(npi)
    assert _luhn_with_constant_24(npi)


@given(nine_digits, st.integers(min_value=1, max_value=9))
def test_every_other_check_digit_is_refused(first_nine, offset):
    wrong = (npi_check_digit(first_nine) + offset) % 10
    assert not is_valid_npi(first_nine + str(wrong))


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_validator_agrees_with_the_plus_24_formulation(npi):
    assert is_valid_npi(npi) == (npi[0] in "12" and _luhn_with_constant_24(npi))


@given(nine_digits, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_a_single_mistyped_digit_is_caught(first_nine, position, delta):
    npi = first_nine + str(npi_check_digit(first_nine))
    typo = npi[:position] + str((int(npi[position]) + delta) % 10) + npi[position + 1:]
    assert not is_valid_npi(typo)


@pytest.mark.parametrize(("value", "message"), [
    ("123456789", "An NPI is exactly 10 digits."),
    ("3234567893", "An NPI starts with 1 or 2."),
    ("1234567890", "This NPI's check digit is wrong: check for a typo."),
])
def test_each_problem_is_stated_in_full_words(value, message):
    assert npi_problem(value) == message


@pytest.mark.parametrize("value", [1234567893, None, 12345678.93, b"1234567893", ["1234567893"]])
def test_a_value_that_is_not_text_is_refused_not_crashed_on(value):
    assert npi_problem(value) == "An NPI is exactly 10 digits."
    assert not is_valid_npi(value)


@pytest.mark.parametrize("value", ["12345678", "1234567890", "12345678a", "", "１２３４５６７８９"[:9] + "x"])
def test_the_check_digit_needs_exactly_nine_digits(value):
    with pytest.raises(ValueError, match="^an NPI's check digit is computed from exactly nine digits$"):
        npi_check_digit(value)
