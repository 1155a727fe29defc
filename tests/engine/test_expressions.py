"""The expression and template language: Jinja2's immutable sandbox with size limits (engine.expressions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine import expressions
from engine.expressions import ExpressionError, evaluate, render

# ``expressions.test`` is not imported by name: pytest would collect it as a test.
is_true = expressions.test

CTX: dict[str, Any] = {
    "customer": {"name": "李雷", "orders_count": 2, "vip_level": 3, "tags": ["尝鲜客"], "city": "杭州"},
    "event": {"type": "order.paid",
              "payload": {"amount": 12900, "items": [{"sku": "A1"}], "lines": [{"sku": "A1"}]}},
    "vars": {"coupon": "WELCOME10"},
    "journey": {"flow": "welcome-new-contact"},
    "now": datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
}


# -- conditions ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("customer.orders_count > 0", True),
        ("customer.orders_count > 5", False),
        ("customer.vip_level >= 3 and customer.city == '杭州'", True),
        ("'尝鲜客' in customer.tags", True),
        ("'复购客' in customer.tags", False),
        ("event.payload.amount >= 10000", True),
        ("event.payload['amount'] // 100 == 129", True),
        ("event.payload.lines | length == 1", True),
        ("event.payload['items'] | length == 1", True),
        ("event.type.startswith('order.')", True),
        ("vars.coupon == 'WELCOME10'", True),
        ("journey.flow == 'welcome-new-contact'", True),
        ("now.year == 2025", True),
        ("customer.name | length == 2", True),
        ("not (customer.orders_count > 0)", False),
        ("customer.orders_count in [1, 2, 3]", True),
    ],
)
def test_conditions(source: str, expected: bool) -> None:
    assert is_true(source, CTX) is expected


def test_evaluate_returns_the_value() -> None:
    assert evaluate("customer.orders_count * 10 + 1", CTX) == 21
    assert evaluate("event.payload.lines[0].sku", CTX) == "A1"
    assert evaluate("event.payload['items'][0].sku", CTX) == "A1"


# -- missing values ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "customer.missing",
        "customer.missing > 0",
        "customer.missing < 0",
        "customer.missing >= 0",
        "0 < customer.missing",
        "customer.missing == 0",
        "customer.missing == ''",
        "customer.missing.deeper.still > 1",
        "customer.missing in [1, 2]",
        "event.payload.nothing",
    ],
)
def test_missing_values_are_false(source: str) -> None:
    assert is_true(source, CTX) is False


def test_missing_values_with_empty_context() -> None:
    assert is_true("customer.orders_count > 0", {}) is False
    assert is_true("not customer.orders_count", {}) is True
    assert is_true("customer.missing == none", CTX) is True
    assert is_true("customer.missing != 0", CTX) is True


def test_missing_values_render_empty() -> None:
    assert render("你好{{ customer.nickname }}！{{ customer.a.b.c }}", CTX) == "你好！"


# -- templates -----------------------------------------------------------------------------------
def test_templates_render() -> None:
    assert render("你好 {{ customer.name }}", CTX) == "你好 李雷"
    assert render("{{ customer.name }}，您的券码 {{ vars.coupon }}", CTX) == "李雷，您的券码 WELCOME10"
    assert render("{% if customer.vip_level >= 3 %}尊贵的{% endif %}{{ customer.name }}", CTX) == "尊贵的李雷"
    assert render("¥{{ '%.2f' | format(event.payload.amount / 100) }}", CTX) == "¥129.00"
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}", CTX) == "012"


def test_templates_do_not_escape_html() -> None:
    assert render("{{ customer.name }}", {"customer": {"name": "<b>&</b>"}}) == "<b>&</b>"


def test_compiled_forms_are_cached() -> None:
    assert expressions.compile_expression("customer.vip_level > 1") is expressions.compile_expression(
        "customer.vip_level > 1")
    assert expressions.compile_template("hi {{ customer.name }}") is expressions.compile_template(
        "hi {{ customer.name }}")


# -- compile errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("order.amount > 100", "unknown name 'order'; use one of customer, event, journey, now, vars"),
        ("customr.orders_count > 0", "unknown name 'customr'"),
        ("foo and bar", "unknown name 'bar', 'foo'"),
        ("customer.(", "syntax error"),
        ("customer.orders_count >", "syntax error"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("1 == 1" + " " * 4000, "the limit is 4000"),
    ],
)
def test_expressions_that_do_not_compile(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        expressions.compile_expression(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("你好 {{ nickname }}", "unknown name 'nickname'"),
        ("{{ customer.name ", "syntax error on line 1"),
        ("第一行\n{% if customer.vip %}", "syntax error on line 2"),
        ("{% for x in %}{% endfor %}", "syntax error"),
        ("x" * 4001, "the limit is 4000"),
    ],
)
def test_templates_that_do_not_compile(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        expressions.compile_template(source)


def test_template_without_placeholders_compiles() -> None:
    assert render("感谢您的支持", {}) == "感谢您的支持"


def test_names_bound_inside_the_template_are_allowed() -> None:
    assert render("{% set n = customer.name %}{{ n }}", CTX) == "李雷"
    assert render("{% for t in customer.tags %}[{{ t }}]{% endfor %}", CTX) == "[尝鲜客]"


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner", "namespace", "dict", "config", "request"])
def test_only_the_context_names_and_range_are_visible(name: str) -> None:
    with pytest.raises(ExpressionError, match="unknown name"):
        expressions.compile_expression(f"{name}")


# -- the sandbox -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "customer.__class__",
        "customer.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__",
        "event.__init__.__globals__",
        "now.__class__",
    ],
)
def test_dunder_attributes_are_refused(source: str) -> None:
    with pytest.raises(ExpressionError, match="not allowed"):
        is_true(source, CTX)
    with pytest.raises(ExpressionError, match="not allowed"):
        render("{{ " + source + " }}", CTX)


def test_private_attributes_yield_nothing() -> None:
    assert is_true("customer._private", CTX) is False
    assert render("{{ customer._private }}", CTX) == ""


@pytest.mark.parametrize(
    "source",
    [
        "''.__class__.__mro__[1].__subclasses__()",
        "customer.name.__len__()",
        "customer.items.__self__",
        "customer.tags.append('hacked')",
        "customer.update({'name': 'x'})",
        "customer.pop('name')",
        "customer.tags.clear()",
    ],
)
def test_unsafe_calls_and_mutation_are_errors(source: str) -> None:
    ctx = {"customer": {"name": "李雷", "tags": ["尝鲜客"]}}
    try:
        result = evaluate(source, ctx)
    except ExpressionError:
        result = None
    assert not result
    assert ctx == {"customer": {"name": "李雷", "tags": ["尝鲜客"]}}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("range(100000) | length", "range of 100000 items is larger than the limit"),
        ("range(0, 10**9, 2) | list | length", "larger than the limit"),
        ("2 ** 100000", "exponent too large"),
        ("(2 ** 4000) ** 2", "exponent too large"),
        ("'a' * 100000", "repetition result too large"),
        ("100000 * 'ab'", "repetition result too large"),
        ("[0] * 50000", "repetition result too large"),
        ("customer.name * customer.huge", "repetition result too large"),
    ],
)
def test_huge_range_power_and_repetition_are_refused(source: str, message: str) -> None:
    ctx = {"customer": {"name": "李雷", "huge": 10**9}}
    with pytest.raises(ExpressionError, match=message):
        evaluate(source, ctx)


def test_reasonable_range_power_and_repetition_work() -> None:
    assert evaluate("range(10000) | length", {}) == 10_000
    assert evaluate("2 ** 64", {}) == 2**64
    assert evaluate("'ab' * 3", {}) == "ababab"
    assert evaluate("3 * 7", {}) == 21
    assert evaluate("1 ** 100000", {}) == 1


def test_rendered_output_is_capped() -> None:
    with pytest.raises(ExpressionError, match="the limit is 20000"):
        render("{% for i in range(10000) %}{{ customer.name }}{% endfor %}", {"customer": {"name": "abc"}})


def test_runtime_errors_become_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("customer.orders_count / 0", CTX)
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("customer.name + 1", CTX)
    with pytest.raises(ExpressionError, match="cannot render template"):
        render("{{ 1 // 0 }}", {})


def test_arithmetic_on_a_missing_value_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("customer.missing + 1 > 0", CTX)


@pytest.mark.parametrize(
    "source",
    ["'%0100000d' % 1", "'{:>100000}'.format(1)", "'x' | center(100000)", "'%100000d' | format(1)"],
)
def test_other_allocating_operations_are_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(source, {})


def test_payload_fields_named_like_dict_methods_are_reachable_with_dots() -> None:
    assert evaluate("event.payload.items[0].sku", CTX) == "A1"


@pytest.mark.parametrize(
    "source",
    [
        "'{:{}}'.format('x', 100000)",
        "'{:>{w}}'.format(1, w=100000)",
        "'%*d' % (100000, 1)",
        "'%.*f' % (100000, 1.0)",
        "'x'.ljust(100000)",
        "'x'.rjust(100000)",
        "'x'.center(100000)",
        "'x'.zfill(100000)",
        "'\t'.expandtabs(100000)",
        "('a' * 200).replace('', 'x' * 200)",
        "range(100) | map('string') | join('x' * 1000)",
    ],
)
def test_amplifying_string_operations_are_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(source, {})
