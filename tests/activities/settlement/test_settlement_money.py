"""Yuan ↔ fen conversion and rounding modes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.settlement.errors import MoneyError
from activities.settlement.money import (
    exact_decimal,
    format_exact_yuan,
    format_yuan,
    parse_yuan,
    percent_of,
    require_fen,
    round_fen,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("123.45", 12345),
        ("123.4", 12340),
        ("123", 12300),
        ("0.05", 5),
        ("-0.50", -50),
        ("+7.00", 700),
        (" 1.10 ", 110),
        ("1000000", 100000000),
    ],
)
def test_parse_yuan_text(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


def test_parse_yuan_decimal_and_int() -> None:
    assert parse_yuan(Decimal("123.45")) == 12345
    assert parse_yuan(Decimal("1.230")) == 123
    assert parse_yuan(Decimal("1E+2")) == 10000
    assert parse_yuan(50000) == 5000000


@pytest.mark.parametrize("text", ["1.234", "0.001", "-5.999"])
def test_parse_yuan_refuses_more_than_two_decimals(text: str) -> None:
    with pytest.raises(MoneyError, match="at most 2"):
        parse_yuan(text)


@pytest.mark.parametrize("text", ["", "abc", "1,000.00", "¥5", "1e3", "NaN", "1.", ".5", "--1"])
def test_parse_yuan_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(MoneyError, match="not a yuan amount"):
        parse_yuan(text)


def test_parse_yuan_refuses_floats_and_bools() -> None:
    with pytest.raises(MoneyError, match="float"):
        parse_yuan(1.1)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="boolean"):
        parse_yuan(True)
    with pytest.raises(MoneyError, match="fractions of a fen"):
        parse_yuan(Decimal("1.234"))
    with pytest.raises(MoneyError, match="finite"):
        parse_yuan(Decimal("Infinity"))


@pytest.mark.parametrize(
    ("fen", "text", "grouped"),
    [
        (12345, "123.45", "¥123.45"),
        (-5, "-0.05", "-¥0.05"),
        (0, "0.00", "¥0.00"),
        (123456789, "1234567.89", "¥1,234,567.89"),
    ],
)
def test_format_yuan(fen: int, text: str, grouped: str) -> None:
    assert format_yuan(fen) == text
    assert format_yuan(fen, grouping=True, symbol=True) == grouped


def test_format_yuan_refuses_non_fen() -> None:
    with pytest.raises(MoneyError, match="integer number of fen"):
        format_yuan(Decimal("1.5"))  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="float"):
        format_yuan(1.0)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_is_identity(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


@pytest.mark.parametrize(
    ("amount", "half_up", "half_even"),
    [
        ("0.5", 1, 0),
        ("1.5", 2, 2),
        ("2.5", 3, 2),
        ("2.4999", 2, 2),
        ("2.5001", 3, 3),
        ("-0.5", -1, 0),
        ("-2.5", -3, -2),
        ("617.25", 617, 617),
        ("7", 7, 7),
    ],
)
def test_rounding_modes(amount: str, half_up: int, half_even: int) -> None:
    assert round_fen(Decimal(amount)) == half_up
    assert round_fen(Decimal(amount), "half_up") == half_up
    assert round_fen(Decimal(amount), "half_even") == half_even


def test_round_fen_refuses_floats_and_unknown_modes() -> None:
    with pytest.raises(MoneyError, match="float"):
        round_fen(0.5)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="half_even"):
        round_fen(Decimal("0.5"), "down")  # type: ignore[arg-type]
    assert round_fen(42) == 42


def test_percent_of_is_exact() -> None:
    assert percent_of(12345, Decimal("5")) == Decimal("617.25")
    assert percent_of(1, Decimal("33.3333")) == Decimal("0.333333")
    assert percent_of(10**30, Decimal("3")) == Decimal(3 * 10**28)


def test_exact_decimal_and_require_fen() -> None:
    assert exact_decimal("0.95", "KPI") == Decimal("0.95")
    assert exact_decimal(3, "KPI") == Decimal(3)
    with pytest.raises(MoneyError, match="floats"):
        exact_decimal(0.95, "KPI")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="not a number"):
        exact_decimal("fast", "KPI")
    with pytest.raises(MoneyError, match="cannot be negative"):
        require_fen(-1, "sales_fen", allow_negative=False)


def test_format_exact_yuan_keeps_every_decimal() -> None:
    assert format_exact_yuan(Decimal("1500000.5")) == "¥15,000.005"
    assert format_exact_yuan(Decimal("7")) == "¥0.07"
    assert format_exact_yuan(Decimal("-250")) == "-¥2.50"
