"""Expressions and templates have a real cost bound (issue 18, item 1).

Every operation is charged to the evaluation's budget: comparisons, ``in``, slices, ``~`` and ``+``,
repetition, filters, tests, calls, look-ups, and the size of what they touch. The bound is counted,
never timed, so a workflow replays the same way; how long the budget takes at worst is measured by
``make bench`` (bench/expression_cost.py), not here. What is asserted is that the work *stopped*: the
budget ends just past its limit, and the error names the limit.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import expressions
from engine.expressions import MAX_STEPS, Budget, ExpressionTooCostly, cost, render, shared_budget
from engine.validate import validate
from tests.engine.flowkit import flow
from tests.security.cost_kit import CONDITION_38S, TEMPLATE_231

BIG_EVENT: dict[str, Any] = {"event": {"type": "message.received", "payload": {"text": "ab" * 500_000}}}


def _stopped(budget: Budget) -> None:
    """The evaluation stopped at its bound: one last charge past it, no more."""
    assert budget.limit < budget.steps <= budget.limit + 50_000


def test_the_231_character_template_from_the_issue_stops_at_its_bound() -> None:
    assert len(TEMPLATE_231) == 231
    with shared_budget() as budget, pytest.raises(ExpressionTooCostly, match=f"more than {MAX_STEPS} operations"):
        render(TEMPLATE_231, {"customer": {"name": "李雷"}})
    _stopped(budget)


def test_the_slow_condition_from_the_issue_stops_at_its_bound() -> None:
    with shared_budget() as budget, pytest.raises(ExpressionTooCostly, match="operations"):
        expressions.test(CONDITION_38S, BIG_EVENT)
    _stopped(budget)


def test_the_outcome_repeats_exactly() -> None:
    used = []
    for _ in range(3):
        with shared_budget() as budget, pytest.raises(ExpressionTooCostly):
            expressions.test(CONDITION_38S, BIG_EVENT)
        used.append(budget.steps)
    assert len(set(used)) == 1


TEXT = "ab" * 100_000  # 200,000 characters
ITEMS = [f"item-{i}" for i in range(10_000)]
CTX: dict[str, Any] = {"vars": {"text": TEXT, "same": "ab" * 100_000, "short": "ab", "items": ITEMS,
                                "copy": list(ITEMS), "n": 7},
                       "customer": {"name": "李雷"}}

# (what, expression on big values, the same on small values, at least this many more operations)
OPERATIONS = [
    ("equality of long texts", "vars.text == vars.same", "vars.short == vars.short", 200),
    ("ordering of long texts", "vars.text < vars.same", "vars.short < vars.short", 200),
    ("in on a long text", "'abba' in vars.text", "'abba' in vars.short", 2000),
    ("not in on a long text", "'abba' not in vars.text", "'abba' not in vars.short", 2000),
    ("in on a long list", "'zz' in vars.items", "'zz' in [vars.short]", 9_000),
    ("equality of long lists", "vars.items == vars.copy", "[1] == [1]", 9_000),
    ("slicing a long text", "vars.text[1:]", "vars.short[1:]", 190),
    ("slicing a long list", "vars.items[1:]", "[1, 2][1:]", 9_000),
    ("~ on long texts", "vars.text ~ 'x'", "vars.short ~ 'x'", 200),
    ("+ on long texts", "vars.text + 'x'", "vars.short + 'x'", 200),
    ("+ on long lists", "vars.items + ['x']", "[vars.short] + ['x']", 9_000),
    ("repetition", "vars.short * 10000", "vars.short * 1", 20),
    ("% formatting", "'%s!' % vars.text", "'%s!' % vars.short", 200),
    ("a filter", "vars.text | upper", "vars.short | upper", 400),
    ("a regex filter", "vars.text | wordcount", "vars.short | wordcount", 9000),
    ("sorting", "vars.items | sort | first", "[vars.short] | sort | first", 100_000),
    ("a test", "vars.items | select('in', vars.text) | list", "[vars.short] | select('in', vars.text) | list",
     10_000),
    ("a method call", "vars.text.count('ba')", "vars.short.count('ba')", 2000),
    ("a look-up with a long key", "vars[vars.text ~ '']", "vars[vars.short ~ '']", 200),
    ("text to a number", "('9' * 4000) | int", "'9' | int", 900),
]


@pytest.mark.parametrize(("what", "big", "small", "more"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_every_operation_is_charged_by_the_size_of_what_it_touches(what: str, big: str, small: str,
                                                                     more: int) -> None:
    with shared_budget(Budget(10**9)):
        assert cost(big, "expression", CTX) - cost(small, "expression", CTX) >= more, what


# (what, a loop body doing cheap work, the same loop with an empty body): each run of a body pays for
# every syntax node in it, so a loop of 1,000 comparisons of small numbers is no cheaper than 1,000 calls
CHEAP = [
    ("comparisons", "{% if i > 1 and i < 5 and i != 3 %}{% endif %}"),
    ("look-ups", "{% if customer.a.b.c.d %}{% endif %}"),
    ("arithmetic", "{% set x = i * 2 + 1 - i // 3 %}"),
    ("conditions", "{% if 1 %}{% endif %}{% if 1 %}{% endif %}{% if 1 %}{% endif %}"),
    ("literal text", "xxxxxxxxxx"),
    ("output", "{{ i }}"),
]


@pytest.mark.parametrize(("what", "body"), CHEAP, ids=[c[0] for c in CHEAP])
def test_cheap_operations_in_a_loop_are_counted_each_time(what: str, body: str) -> None:
    loop = "{% for i in range(1000) %}" + body + "{% endfor %}"
    empty = "{% for i in range(1000) %}{% endfor %}"
    with shared_budget(Budget(10**9)):
        assert cost(loop, "template", CTX) - cost(empty, "template", CTX) >= 1000, what


def test_printing_is_counted_even_as_literal_text() -> None:
    source = "{% for i in range(10000) %}" + "x" * 1000 + "{% endfor %}"
    with pytest.raises(ExpressionTooCostly, match="prints more than"):
        render(source, CTX)


def test_sum_of_lists_is_refused() -> None:  # quadratic copying, priced as one filter call
    with pytest.raises(expressions.ExpressionError, match="sum adds numbers"):
        expressions.evaluate("vars.items | batch(1) | sum(start=[])", CTX)


def test_compiling_inside_a_shared_budget_still_meters_at_run_time() -> None:
    # constant folding at compile time must not run (and so drop) the metering hooks
    source = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}fresh-" + "1" * 3
    with shared_budget(), pytest.raises(ExpressionTooCostly):
        render(source, CTX)


def test_ordinary_templates_cost_little() -> None:
    welcome = "你好 {{ customer.name }}，送你一张券：{{ vars.coupon }}"
    order = "{% for item in event.payload.items %}{{ item.name }} × {{ item.quantity }}\n{% endfor %}"
    for source in (welcome, order):
        assert expressions.sample_cost(source, "template") < 500
    assert expressions.sample_cost("customer.orders_count > 0 and '尝鲜客' in customer.tags", "expression") < 50


# -- validation refuses what is too costly on sample data, naming the node and why ---------------------
def _problems(document: dict[str, Any]) -> list[Any]:
    return [p for p in validate(document).problems if p.code == "too_costly"]


def test_validation_refuses_a_costly_condition_naming_the_node() -> None:
    costly = "range(10000) | map('string') | select('in', customer.name) | list | length > 0"
    doc = flow("costly", [("start", "trigger.event", {"event": "order.paid"}),
                          ("check", "logic.condition", {"expr": costly})],
               [("start", "out", "check")])
    problems = _problems(doc)
    assert [(p.node, p.field) for p in problems] == [("check", "config.expr")]
    assert "too costly on sample data" in problems[0].message and "operations" in problems[0].message
    assert "loops" in problems[0].fix


def test_validation_refuses_a_costly_template_and_filters() -> None:
    doc = flow("costly-t", [("start", "trigger.event", {"event": "order.paid", "filter": CONDITION_38S}),
                            ("hello", "action.send_message", {"template": TEMPLATE_231})],
               [("start", "out", "hello")],
               exit_on=[{"event": "customer.unsubscribed",
                         "filter": "range(10000) | map('string') | list | length > 1"}])
    where = {(p.node, p.field) for p in _problems(doc)}
    assert where == {("start", "config.filter"), ("hello", "config.template"), (None, "settings.exit_on.0.filter")}


def test_validation_passes_ordinary_flows() -> None:
    from tests.engine.flowkit import WELCOME

    assert validate(WELCOME).ok


@pytest.mark.parametrize(("source", "kind", "cheap"), [
    ("customer.orders_count > 0 and '尝鲜客' in customer.tags", "expression", True),
    ("你好 {{ customer.name | default('朋友') }}，{{ vars.coupon | upper }}", "template", True),
    ("event.payload.amount >= 10000 or customer.vip_level is defined", "expression", True),
    ("range(10) | list", "expression", False),
    ("customer.tags | map('upper') | list", "expression", False),
    ("customer.name * 3", "expression", False),
    ("{% for t in customer.tags %}{{ t }}{% endfor %}", "template", False),
    ("{% set a = customer.name %}{{ a ~ a }}", "template", False),
    ("customer.name.split('a')", "expression", False),
    ("customer.name[1:]", "expression", False),
    ("customer.name | title", "expression", False),
])
def test_validation_skips_the_sample_run_only_for_shapes_that_cannot_cost(source: str, kind: str,
                                                                           cheap: bool) -> None:
    assert expressions.cheap_by_shape(source, kind) is cheap
