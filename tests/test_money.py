"""Money as people read and type it."""

import pytest

from core.money import format_money, parse_money


@pytest.mark.parametrize(("cents", "currency", "text"), [
    (3500, "USD", "$35.00"), (5, "USD", "$0.05"), (123456789, "GBP", "£1,234,567.89"), (-500, "USD", "−$5.00"),
    (100, "EUR", "EUR 1.00"),
])
def test_format_money(cents, currency, text):
    assert format_money(cents, currency) == text


@pytest.mark.parametrize(("text", "cents"), [("32.50", 3250), ("32", 3200), ("1,000.5", 100050), (" 0 ", 0)])
def test_parse_money(text, cents):
    assert parse_money(text) == cents


@pytest.mark.parametrize("text", ["-1", "1.005", "abc", "NaN", "Infinity", ""])
def test_parse_money_refuses(text):
    with pytest.raises(ValueError, match="is not an amount"):
        parse_money(text)
