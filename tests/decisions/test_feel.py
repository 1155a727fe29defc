"""The FEEL subset of decision-table cells: every unary test form, literals, three-valued logic, errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from decisions.feel import (
    Comparison,
    FeelSyntaxError,
    NullTest,
    Range,
    format_literal,
    parse_literal,
    parse_unary_tests,
)


def matches(text: str, value: object) -> bool:
    return parse_unary_tests(text).matches(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["-", "", "   "])
def test_dash_and_blank_match_anything_including_null(text: str) -> None:
    tests = parse_unary_tests(text)
    assert tests.is_any
    assert all(tests.matches(value) for value in (None, 0, "x", True, date(2024, 1, 1)))


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("42", 42, True),
    ("42", Decimal("42.0"), True),
    ("42", 42.0, True),
    ("42", 41, False),
    ("-1.5", Decimal("-1.5"), True),
    ("-1.5", -1.5, True),
    ('"gold"', "gold", True),
    ('"gold"', "Gold", False),
    ('"say \\"hi\\""', 'say "hi"', True),
    ('"\\u4e2d"', "中", True),
    ('"退款"', "退款", True),
    ("true", True, True),
    ("true", False, False),
    ("false", False, True),
    ('date("2024-01-01")', date(2024, 1, 1), True),
    ('date("2024-01-01")', date(2024, 1, 2), False),
])
def test_literal_equality(text: str, value: object, expected: bool) -> None:
    assert matches(text, value) is expected


def test_booleans_are_not_numbers() -> None:
    assert not matches("1", True)
    assert not matches("true", 1)


@pytest.mark.parametrize(("text", "below", "at", "above"), [
    ("< 10", True, False, False),
    ("<= 10", True, True, False),
    ("> 10", False, False, True),
    (">= 10", False, True, True),
    ("= 10", False, True, False),
    ("!= 10", True, False, True),
])
def test_comparisons(text: str, below: bool, at: bool, above: bool) -> None:
    assert [matches(text, value) for value in (9, 10, 11)] == [below, at, above]


def test_comparisons_on_decimals_strings_and_dates() -> None:
    assert matches("< 10.5", Decimal("10.49"))
    assert not matches("< 10.5", Decimal("10.5"))
    assert matches('< "m"', "apple")
    assert not matches('< "m"', "zebra")
    assert matches('>= date("2024-02-10")', date(2024, 2, 10))
    assert not matches('>= date("2024-02-10")', date(2024, 2, 9))


@pytest.mark.parametrize(("text", "values"), [
    ("[1..10]", (False, True, True, True, False)),
    ("[1..10)", (False, True, True, False, False)),
    ("(1..10]", (False, False, True, True, False)),
    ("(1..10)", (False, False, True, False, False)),
    ("]1..10[", (False, False, True, False, False)),
    ("]1..10]", (False, False, True, True, False)),
    ("[1..10[", (False, True, True, False, False)),
])
def test_ranges_with_open_and_closed_ends(text: str, values: tuple[bool, ...]) -> None:
    assert tuple(matches(text, value) for value in (0, 1, 5, 10, 11)) == values


def test_range_of_dates_and_negative_numbers() -> None:
    assert matches('[date("2024-02-10")..date("2024-02-17")]', date(2024, 2, 14))
    assert not matches('[date("2024-02-10")..date("2024-02-17")]', date(2024, 2, 18))
    assert matches("[-10..-1]", -5)


def test_lists_match_any_member() -> None:
    assert matches('"a", "b", "c"', "b")
    assert not matches('"a", "b", "c"', "d")
    assert matches("< 0, > 100", 101)
    assert matches("< 0, > 100", -1)
    assert not matches("< 0, > 100", 50)
    assert matches("1, [5..6]", 5.5)


def test_negation() -> None:
    assert matches('not("gold", "platinum")', "silver")
    assert not matches('not("gold", "platinum")', "gold")
    assert matches("not([1..10])", 11)
    assert not matches("not([1..10])", 3)
    assert matches("not ( < 10 )", 10)


def test_null_tests() -> None:
    assert matches("null", None)
    assert not matches("null", 0)
    assert not matches("null", "")
    assert matches('"a", null', None)
    assert matches("not(null)", 0)
    assert not matches("not(null)", None)
    assert matches("!= null", "x")
    assert matches("= null", None)


def test_three_valued_logic_for_null_and_mismatched_types() -> None:
    amount_below = parse_unary_tests("< 10")
    assert amount_below.evaluate(None) is None
    assert amount_below.evaluate("5") is None  # a string is not ordered against a number
    assert parse_unary_tests("not(< 10)").evaluate(None) is None  # unknown stays unknown
    assert not matches("not(< 10)", None)
    assert matches('not("gold")', None)  # null = "gold" is false, so not(...) is true
    assert parse_unary_tests("< 10, 5").evaluate("x") is None
    assert parse_unary_tests("< 10, 5").evaluate(5) is True


def test_parsed_structure() -> None:
    tests = parse_unary_tests('not("a", < 5, [1..2), null)')
    assert tests.negated
    assert tests.tests == (Comparison("=", "a"), Comparison("<", 5), Range(1, 2, True, False), NullTest())
    assert [str(test) for test in tests.tests] == ['"a"', "< 5", "[1..2)", "null"]
    assert tests.literal_kinds() == {"string", "number"}


@pytest.mark.parametrize(("text", "problem"), [
    (">> 5", "expected a literal"),
    ("[10..1]", "the range is empty"),
    ("(5..5]", "the range is empty"),
    ('[1.."z"]', "different types"),
    ("[true..false]", "range end"),
    ("< true", "needs a number, string or date"),
    ('"abc', "unterminated string"),
    ("amount > 5", "variables and functions are not supported"),
    ("< maxAmount", "variables and functions are not supported"),
    ("1,", "expected a test"),
    ('date("tomorrow")', "not a date"),
    ("date(2024)", "takes a string"),
    ("not(1", "expected ')'"),
    ("1 2", "unexpected text"),
    ("- 5 -", "unexpected text"),
    ("10 % 3", "unexpected '%'"),
    ("[1..5", "unexpected end"),
])
def test_syntax_errors_quote_the_text_and_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(FeelSyntaxError) as caught:
        parse_unary_tests(text)
    assert problem in str(caught.value)
    assert f"'{text}'" in str(caught.value)


@pytest.mark.parametrize(("text", "value"), [
    ('"refund_vip"', "refund_vip"),
    ("3", 3),
    ("-3", -3),
    ("0.05", Decimal("0.05")),
    ("true", True),
    ("false", False),
    ("null", None),
    ("", None),
    ('date("2024-10-08")', date(2024, 10, 8)),
])
def test_output_literals(text: str, value: object) -> None:
    parsed = parse_literal(text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("text", ["< 5", '"a", "b"', "amount", "-", "1 + 1"])
def test_output_entries_must_be_single_literals(text: str) -> None:
    with pytest.raises(FeelSyntaxError):
        parse_literal(text)


@pytest.mark.parametrize("value", [None, True, False, 0, -7, Decimal("1999.00"), "a\"b\\c\n", "中文",
                                   date(2024, 2, 29)])
def test_format_literal_round_trips(value: object) -> None:
    assert parse_literal(format_literal(value)) == value  # type: ignore[arg-type]


def test_format_literal_of_a_float_is_exact_decimal_text() -> None:
    assert format_literal(0.1) == "0.1"
    assert format_literal(Decimal("1E+3")) == "1000"
