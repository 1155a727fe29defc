"""FEEL at compliance level 3: each thing issue 17 lists, with results worked out by hand from the
DMN 1.5 specification (chapter 10) and, where it is silent, Camunda's feel-scala behaviour."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from decisions.feel import (
    Budget,
    FeelSyntaxError,
    YearsMonths,
    compile_expression,
    compile_unary_tests,
    evaluate,
)

D = Decimal


@pytest.mark.parametrize(("text", "context", "expected"), [
    # qualified names and names with spaces
    ("customer.tier", {"customer": {"tier": "gold"}}, "gold"),
    ("Applicant Age + 1", {"Applicant Age": 40}, D(41)),
    ("Loan.Monthly  Payment * 12", {"Loan": {"Monthly Payment": 100}}, D(1200)),
    ("`order total` > 10", {"order total": 11}, True),  # Camunda's backquoted names
    # arithmetic on 34-digit decimals, never floats
    ("0.1 + 0.2 = 0.3", {}, True),
    ("1 / 3", {}, D("0.3333333333333333333333333333333333")),
    ("amount * 0.1", {"amount": D("1999.90")}, D("199.990")),
    ('"VIP-" + level', {"level": "gold"}, "VIP-gold"),
    # null propagation and three-valued logic
    ("missing + 1", {}, None),
    ("1 + null", {}, None),
    ("true and null", {}, None),
    ("false and null", {}, False),
    ("true or null", {}, True),
    ('"a" < 1', {}, None),
    ('1 = "1"', {}, None),
    ("null = null", {}, True),
    # if, for, some, every, instance of, between, in
    ('if amount > 100 then "big" else "small"', {"amount": 150}, "big"),
    ("for x in [1, 2, 3] return x * x", {}, [D(1), D(4), D(9)]),
    ("for i in 1..3, j in 1..2 return i * j", {}, [D(1), D(2), D(2), D(4), D(3), D(6)]),
    ("for i in 0..4 return if i = 0 then 1 else i * partial[-1]", {}, [D(1), D(1), D(2), D(6), D(24)]),
    ("some x in [1, 5, 9] satisfies x > 8", {}, True),
    ("every x in [1, 5, 9] satisfies x > 0", {}, True),
    ("every x in [1, null] satisfies x > 0", {}, None),
    ("5 instance of number", {}, True),
    ("[1, 2] instance of list<number>", {}, True),
    ('{a: "x"} instance of context<a: string>', {}, True),
    ("7 between 1 and 10", {}, True),
    ("7 in [1..10)", {}, True),
    ("7 in (< 5, > 6)", {}, True),
    # lists and filters, contexts
    ("[1, 2, 3, 4][item > 2]", {}, [D(3), D(4)]),
    ("[1, 2, 3][-1]", {}, D(3)),
    ('orders[status = "paid"].amount', {"orders": [{"status": "paid", "amount": 5},
                                                    {"status": "open", "amount": 7}]}, [D(5)]),
    ("{a: 2, b: a * 3}.b", {}, D(6)),
    ('get value({x: 1}, "x")', {}, D(1)),
    ("context put({a: 1}, \"b\", 2)", {}, {"a": D(1), "b": D(2)}),
    # functions: string, list, numeric, context, range, temporal
    ('substring("foobar", 3, 2)', {}, "ob"),
    ('string length("退款工单")', {}, D(4)),
    ('upper case("vip")', {}, "VIP"),
    ('replace("13800138000", "(\\d{3})\\d{4}(\\d{4})", "$1****$2")', {}, "138****8000"),
    ('split("a,b,,c", ",")', {}, ["a", "b", "", "c"]),
    ("sum([1, 2, 3]) + count([1]) + max(4, 9)", {}, D(16)),
    ("mean([1, 2, 3, 4])", {}, D("2.5")),
    ("distinct values([1, 2, 1])", {}, [D(1), D(2)]),
    ("flatten([1, [2, [3]]])", {}, [D(1), D(2), D(3)]),
    ("sort([3, 1, 2], function(a, b) a > b)", {}, [D(3), D(2), D(1)]),
    ("decimal(2.675, 2)", {}, D("2.68")),  # half even on the decimal 2.675 (a float would give 2.67)
    ("round half up(2.5, 0)", {}, D(3)),
    ("modulo(-7, 3)", {}, D(2)),
    ("before(1, [2..5])", {}, True),
    ("overlaps([1..5], [4..8])", {}, True),
    ("string(3.50)", {}, "3.5"),
    ('number("1,000.5", ",", ".")', {}, D("1000.5")),
])
def test_expressions(text: str, context: dict[str, object], expected: object) -> None:
    assert evaluate(text, context) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('date("2026-11-11")', date(2026, 11, 11)),
    ('@"P7D"', timedelta(days=7)),
    ('date("2026-11-11") + duration("P7D")', date(2026, 11, 18)),
    ('date("2026-01-31") + duration("P1M")', date(2026, 2, 28)),  # month end kept
    ('date("2026-11-11") - date("2026-11-01")', timedelta(days=10)),
    ('duration("P1Y2M") + duration("P11M")', YearsMonths(25)),
    ('years and months duration(date("2020-02-29"), date("2026-02-28"))', YearsMonths(71)),
    ('duration("PT90M")', timedelta(minutes=90)),
    ('time("23:30:00") + duration("PT1H")', time(0, 30)),
    ('day of week(date("2026-11-11"))', "Wednesday"),
    ('week of year(date("2026-01-01"))', D(1)),
    ('date and time("2026-11-11T10:00:00@Asia/Shanghai").hour', D(10)),
    # across zones: the instants are compared and subtracted
    ('@"2026-11-11T10:00:00@Asia/Shanghai" = @"2026-11-11T02:00:00Z"', True),
    ('@"2026-11-11T10:00:00@Asia/Shanghai" - @"2026-11-11T10:00:00@Europe/Paris"', timedelta(hours=-7)),
    # the night Paris goes to summer time lasts 23 hours
    ('@"2026-03-29T03:00:00@Europe/Paris" - @"2026-03-28T03:00:00@Europe/Paris"', timedelta(hours=23)),
    ('@"2026-03-28T12:00:00@Europe/Paris" + duration("P1D")',
     datetime(2026, 3, 29, 13, 0, tzinfo=ZoneInfo("Europe/Paris"))),
    ('@"2026-11-11T10:00:00" - @"2026-11-11T10:00:00Z"', None),  # local and zoned do not mix
])
def test_dates_times_and_durations(text: str, expected: object) -> None:
    assert evaluate(text) == expected


def test_now_is_the_callers_clock() -> None:
    fixed = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    assert evaluate('now() - last_order > duration("P30D")', {"last_order": datetime(2026, 10, 1, tzinfo=UTC)},
                    now=fixed) is True
    assert evaluate("today()", now=fixed) == date(2026, 12, 6)


@pytest.mark.parametrize(("cell", "value", "expected"), [
    ("< limit", 5, True),
    ("[min..max]", 7, True),
    ('"gold", "platinum"', "gold", True),
    ("not(null)", 1, True),
    ("? > 10 and ? < 20", 15, True),
    ("count(?) > 1", [1, 2], True),
    ("-", None, True),
    ("< 10", None, False),  # null is not less than 10: the cell does not match
    ("not(< 10)", None, False),
    ("[1..5], [8..9]", 8, True),
])
def test_unary_tests(cell: str, value: object, expected: bool) -> None:
    assert compile_unary_tests(cell, {"limit", "min", "max"}).matches(value, {"limit": 10, "min": 5, "max": 9}) \
        is expected


def test_errors_become_null_with_a_reason() -> None:
    budget = Budget()
    assert compile_expression('substring("abc", 9)').evaluate(budget=budget) is None
    assert "start position 9 is outside the string" in budget.notes[0]


@pytest.mark.parametrize("text", ["1 +", "if x then 1", "[1..", "{a: 1, a: 2}", '"unterminated', "a ! b"])
def test_syntax_errors_name_the_position(text: str) -> None:
    with pytest.raises(FeelSyntaxError, match=r"position|end|twice"):
        compile_expression(text)
