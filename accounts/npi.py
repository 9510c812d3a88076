"""The US National Provider Identifier check (CMS): 10 digits, first 1 or 2, Luhn check digit.

The check digit is the Luhn digit of ``80840`` + the first nine digits (the ISO 7812 card-issuer
prefix for US health applications). Equivalently: the Luhn sum of the ten digits plus 24 is a
multiple of 10. Worked example (domain.md): 123456789 → check digit 3, so 1234567893 is valid.
"""

from __future__ import annotations

NPI_PREFIX = "80840"


def luhn_check_digit(payload: str) -> int:
    """The digit that, appended to ``payload``, makes its Luhn sum a multiple of 10."""
    total = 0
    # Double every second digit from the right of the payload (the check digit will sit right of it).
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi_check_digit(first_nine: str) -> int:
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("an NPI's check digit is computed from exactly nine digits")
    return luhn_check_digit(NPI_PREFIX + first_nine)


def npi_problem(value: str) -> str | None:
    """What is wrong with ``value`` as an NPI, or None when it is valid."""
    if not isinstance(value, str) or len(value) != 10 or not value.isascii() or not value.isdigit():
        return "An NPI is exactly 10 digits."
    if value[0] not in "12":
        return "An NPI starts with 1 or 2."
    if npi_check_digit(value[:9]) != int(value[9]):
        return "This NPI's check digit is wrong: check for a typo."
    return None


def is_valid_npi(value: str) -> bool:
    return npi_problem(value) is None
