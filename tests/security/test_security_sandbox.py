"""The expression sandbox against the known Jinja2 escapes and denial-of-service tricks.

Each attempt must end in an ``ExpressionError`` naming the reason — never another exception, never
a result, never a long run. Limits count operations, not seconds (see docs/security.md), so the
outcome is the same on every replay of a workflow.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import expressions
from engine.expressions import ExpressionError, evaluate, render

CTX: dict[str, Any] = {
    "customer": {"name": "李雷", "orders_count": 2, "tags": ["尝鲜客"]},
    "event": {"type": "order.paid", "payload": {"amount": 12900}},
    "vars": {},
    "journey": {"flow": "welcome"},
}

# (expression, what the error must say)
ESCAPES = [
    ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("''.__class__.__mro__[1].__subclasses__()", "not allowed"),
    ("self.__init__.__globals__", "not allowed"),
    ("cycler.__init__.__globals__.os", "not allowed"),
    ("customer['__class__']", "not allowed"),
    ("customer|attr('__class__')", "not allowed"),
    ("customer|attr('__init__')", "not allowed"),
    ("'{0.__class__}'.format(customer)", "not allowed"),
    ("'{0.__class__.__mro__}'.format(customer)", "not allowed"),
    ("'{0.__init__.__globals__}'.format(customer.name)", "not allowed"),
    ("'{x.__class__}'.format_map(customer)", "not allowed|cannot (evaluate|render)"),
    ("'{0.name}'.format_map(customer)", "cannot (evaluate|render)"),
    ("'%(a)s'|format(customer.__class__)", "not allowed"),
    ("lipsum()", "unknown name 'lipsum'"),
    ("lipsum.__globals__", "not allowed|unknown name"),
    ("namespace(a=1)", "unknown name 'namespace'"),
    ("joiner()", "unknown name 'joiner'"),
    ("cycler(1, 2)", "unknown name 'cycler'"),
    ("range.__self__", "not allowed"),
    ("customer.items.__self__", "not allowed"),
]


@pytest.mark.parametrize(("source", "message"), ESCAPES)
def test_escape_attempts_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(source, CTX)
    with pytest.raises(ExpressionError, match=message):
        render("{{ " + source + " }}", CTX)


def test_dunder_attributes_are_refused_at_validation_time() -> None:
    with pytest.raises(ExpressionError, match="'__class__' is not allowed"):
        expressions.check("customer.__class__ == 1")
    with pytest.raises(ExpressionError, match="'__globals__' is not allowed"):
        expressions.check("{{ event.__init__.__globals__ }}", "template")


def test_a_payload_field_with_a_dunder_name_is_still_reachable_by_subscript() -> None:
    assert evaluate("event.payload['__meta']", {"event": {"payload": {"__meta": 7}}}) == 7


# (expression, what the error must say): each would take minutes or gigabytes without a limit
DENIALS = [
    ("range(10**9)", "range of 1000000000 items"),
    ("range(0, 10**9, 1) | list", "range of"),
    ("(2 ** 64) ** (2 ** 64)", "exponent too large"),
    ("2 ** 100000", "exponent too large"),
    ("(2 ** 2000) * (2 ** 2000) * (2 ** 2000)", "product too large"),
    ("'a' * 10**9", "repetition result too large"),
    ("[1] * 10**9", "repetition result too large"),
    ("['x' * 20000] * 10", "repetition result too large"),
    ("'%999999999d' % 1", "format width 999999999"),
    ("'%.999999999f' % 1.0", "format width"),
    ("'%*d' % (999999999, 1)", "format width"),
    ("'{:999999999}'.format(1)", "format width|longer than"),
    ("'{:>{w}}'.format(1, w=999999999)", "longer than"),
    ("'%999999999d' | format(1)", "format width"),
    ("'x' | center(999999999)", "center width"),
    ("'x'.ljust(999999999)", "longer than"),
    ("('a' * 20000) | replace('', 'x' * 20000)", "replace would make text longer"),
    ("('a' * 20000).replace('', 'x' * 20000)", "longer than"),
    ("[1] | batch(1000000000, fill_with=0) | list", "batch size"),
    ("{'a': 1} | tojson(indent=1000000000)", "tojson indent"),
    ("('x' * 20000) | wordwrap(1, wrapstring='y' * 20000)", "wordwrap would make text longer"),
    ("range(10000) | map('string') | join('x' * 20000)", "longer than"),
    (" ~ ".join(["('x' * 20000)"] * 51), "longer than the limit of 1000000"),
    (" + ".join(["('x' * 20000)"] * 51), "longer than the limit of 1000000"),
    (" + ".join(["(['x'] * 20000)"] * 6), "larger than the limit of 100000|more than 100000 operations"),
    ("[" * 200 + "]" * 200, "nests brackets"),
    ("not " * 900 + "1", "nests brackets or operators"),
    ("-" * 3000 + "1", "nests brackets or operators"),
    ("+".join(["1"] * 1500), "nested too deeply"),
    ("customer" + ".a" * 1500, "nested too deeply"),
    ("customer.name" + "|string" * 500, "nested too deeply"),
    ("range(10000) | map('string') | map('string') | map('string') | map('string') | map('string') "
     "| map('string') | map('string') | map('string') | map('string') | map('string') | list",
     "operations"),
]


@pytest.mark.parametrize(("source", "message"), DENIALS)
def test_denial_of_service_attempts_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(source, CTX)


TEMPLATE_DENIALS = [
    # nested loops: 10^8 iterations with no output
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "operations"),
    # loop over a big value many times
    ("{% for i in range(10000) %}{{ range(10000) | sum }}{% endfor %}", "operations"),
    # doubling a string with {% set %}
    ("{% set a = 'x' * 20000 %}" + "{% set a = a ~ a %}" * 30 + "{{ a | length }}", "longer than"),
    ("{% set a = ['x'] * 20000 %}" + "{% set a = a + a %}" * 30 + "{{ a | length }}", "larger than|operations"),
    # doubling a number with {% set %}
    ("{% set a = 2 ** 2000 %}" + "{% set a = a * a %}" * 30 + "{{ a > 1 }}", "product too large"),
    # a value shared many times: cheap to build, gigabytes to print
    ("{% set a = ['x' * 10000] * 2 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
     "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c }}", "larger than"),
    ("{% set a = 'x' * 20000 %}{% set b = [a, a, a, a, a, a] %}{{ b | string }}", "larger than"),
    ("{% set a = 'x' * 20000 %}{% set b = range(10) | map(attribute='n', default=a) | list %}{{ b }}", "larger than"),
    # recursion
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "calls nest deeper"),
    ("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "calls nest deeper"),
    # exponential fan-out without recursion depth
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}", "operations"),
    # huge output, a little at a time, inside a {% set %} block where the output cap does not look
    ("{% set s %}{% for i in range(10000) %}{{ 'x' * 20000 }}{% endfor %}{% endset %}{{ s | length }}", "prints more"),
    ("{% macro m() %}{{ 'x' * 20000 }}{% endmacro %}{% for i in range(1000) %}{% set t = m() %}{% endfor %}",
     "prints more"),
    ("{% for i in range(10000) %}{{ 'x' * 19999 }}{% endfor %}", "prints more"),
    # Python refuses to compile code nested this deeply: an error on the canvas, not a crash
    ("{% for a in [1] %}" * 30 + "{% endfor %}" * 30, "nested too deeply"),
    ("{% if 1 %}" * 150 + "{% endif %}" * 150, "nested too deeply"),
    # nondeterministic: it would differ between a workflow and its replay
    ("{{ [1, 2, 3] | random }}", "No filter named 'random'"),
]


@pytest.mark.parametrize(("source", "message"), TEMPLATE_DENIALS)
def test_template_denial_of_service_attempts_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        render(source, CTX)


def test_limits_count_operations_so_the_outcome_repeats() -> None:
    loop = "{% for i in range(1000) %}{% for j in range(60) %}{% endfor %}{% endfor %}ok"
    assert render(loop, CTX) == "ok"  # ~85,000 items and syntax nodes run: inside the budget
    over = "{% for i in range(1000) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok"
    for _ in range(3):
        with pytest.raises(ExpressionError, match="operations"):
            render(over, CTX)


def test_operations_outside_an_evaluation_are_refused() -> None:
    # Jinja folds constant filters at compile time; the metered filters refuse to run there,
    # so the (bounded) work happens at run time instead
    compiled = expressions.compile_template("{{ [1] | batch(100000000, fill_with=0) | list | length }}")
    assert compiled is not None
    with pytest.raises(ExpressionError, match="batch size"):
        render("{{ [1] | batch(100000000, fill_with=0) | list | length }}", CTX)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("customer.orders_count > 0 and '尝鲜客' in customer.tags", True),
        ("event.payload.amount // 100", 129),
        ("(customer.name ~ '!') | length", 3),
        ("[1, 2, 3] | sum", 6),
        ("{'a': 1}.a", 1),
        ("(1, 2)[1]", 2),
        ("customer.tags + ['x']", ["尝鲜客", "x"]),
        ("range(3) | map('string') | join(',')", "0,1,2"),
        ("'%05.1f' % 3.14159", "003.1"),
        ("'{:>5}'.format('ab')", "   ab"),
        ("'a-b' | replace('-', '+')", "a+b"),
        ("[1, 2, 3] | batch(2) | list", [[1, 2], [3]]),
        ("{'a': 1} | tojson", '{"a": 1}'),
        ("2 ** 64 * 3", 3 * 2**64),
        ("customer.name * 3", "李雷李雷李雷"),
        ("range(10000) | length", 10_000),
    ],
)
def test_ordinary_expressions_are_unchanged(source: str, expected: Any) -> None:
    assert evaluate(source, CTX) == expected


def test_ordinary_templates_are_unchanged() -> None:
    template = ("{% macro hi(n) %}你好 {{ n }}{% endmacro %}{{ hi(customer.name) }}，"
                "{% for t in customer.tags %}[{{ t }}]{% else %}none{% endfor %}"
                "{% set total %}{{ event.payload.amount / 100 }}{% endset %} ¥{{ total }}"
                "{% for i in range(3) %}{{ loop.index }}{% if not loop.last %},{% endif %}{% endfor %}")
    assert render(template, CTX) == "你好 李雷，[尝鲜客] ¥129.01,2,3"
    assert render("{{ 'hello world' | wordwrap(5) }}", CTX) == "hello\nworld"
    assert render("{% filter upper %}{{ customer.name }}x{% endfilter %}", CTX) == "李雷X"


def test_large_inputs_still_work_in_conditions() -> None:
    # an event payload may be up to 256 KB: conditions over it are not caught by the size limits
    body = "您好，" + "商品有问题 " * 30_000 + "我要退款"
    ctx = {"event": {"payload": {"body": body, "lines": [{"sku": f"A{i}"} for i in range(5000)]}}}
    assert evaluate("'退款' in event.payload.body | lower", ctx) is True
    assert evaluate("(event.payload.body ~ '!') | length", ctx) == len(body) + 1
    assert evaluate("event.payload.lines | selectattr('sku', 'equalto', 'A4999') | list | length", ctx) == 1
