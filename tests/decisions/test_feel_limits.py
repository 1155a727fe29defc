"""Attacks on the FEEL sandbox: CPU-burning loops, text and list growth, recursion through functions and
BKMs, catastrophic regular expressions, deep or huge source. Each must be refused deterministically
(a limit error, or null for what FEEL defines as an error) — never hang, never blow the stack."""

from __future__ import annotations

import pytest

from decisions.dmn_xml import load_graph
from decisions.feel import FeelLimitError, FeelSyntaxError, compile_expression, evaluate
from decisions.feel.limits import MAX_STEPS, Budget


@pytest.mark.parametrize("text", [
    "for i in 1..1000000000 return i",  # a huge range is refused before it is walked
    "count(for i in 1..60000, j in 1..60000 return 1)",  # nested loops: counted per iteration
    "sum(for i in 1..99999 return for j in 1..10 return j)",
    "some i in [1..99999], j in [1..99999] satisfies i + j < 0",
    "every x in for i in 1..99999 return i satisfies (for j in 1..5 return j) != null",
    "sort(for i in 1..50000 return 50000 - i)",  # n·log n comparisons counted
])
def test_cpu_burning_loops_are_refused(text: str) -> None:
    with pytest.raises(FeelLimitError):
        evaluate(text)


def test_text_that_grows_by_doubling_is_refused() -> None:
    doubling = '{f: function(s, n) if n = 0 then s else f(s + s, n - 1), r: f("xxxxxxxx", 40)}.r'
    with pytest.raises(FeelLimitError, match="longer than"):
        evaluate(doubling)


def test_text_built_in_a_loop_and_joined_is_refused() -> None:
    with pytest.raises(FeelLimitError):
        evaluate('string join(for i in 1..99000 return "xxxxxxxxxxxxxxxxxxxxxxxxxx")')
    with pytest.raises(FeelLimitError):
        evaluate('{s: string join(for i in 1..9000 return "xxxxxxxxxx"), '
                 'r: string join(for i in 1..200 return s)}.r')


@pytest.mark.parametrize("text", [
    "{f: function(n) if n = 0 then 0 else 1 + f(n - 1), r: f(100000)}.r",  # deep recursion
    "{f: function(n) if n = 0 then 0 else f(n - 1) + f(n - 1), r: f(40)}.r",  # shallow but exponential
])
def test_recursion_is_bounded(text: str) -> None:
    with pytest.raises(FeelLimitError):
        evaluate(text)


def test_recursion_that_fits_the_budget_runs() -> None:
    assert evaluate("{fact: function(n) if n <= 1 then 1 else n * fact(n - 1), r: fact(20)}.r") == \
        2432902008176640000


BKM_RECURSION = """<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="r" namespace="urn:r">
  <businessKnowledgeModel id="count_down" name="count down">
    <knowledgeRequirement><requiredKnowledge href="#count_down"/></knowledgeRequirement>
    <encapsulatedLogic><formalParameter name="n"/>
      <literalExpression><text>if n = 0 then 0 else 1 + count down(n - 1)</text></literalExpression>
    </encapsulatedLogic>
  </businessKnowledgeModel>
  <decision id="deep" name="deep">
    <knowledgeRequirement><requiredKnowledge href="#count_down"/></knowledgeRequirement>
    <literalExpression><text>count down(depth)</text></literalExpression>
  </decision>
</definitions>"""


def test_recursion_through_a_bkm_is_bounded() -> None:
    graph = load_graph(BKM_RECURSION)
    assert graph.evaluate({"depth": 20}).results == {"deep": 20}
    with pytest.raises(FeelLimitError, match="nest"):
        graph.evaluate({"depth": 100_000})


@pytest.mark.parametrize(("text", "expected"), [
    ('matches(s + "!", "(a+)+$")', False),  # backtracking engines take years here; RE2 is linear
    ('matches(s, "(a|aa)*b")', False),
    ('replace(s, "(a|b)*c", "x")', "a" * 200_000),
])
def test_catastrophic_regular_expressions_run_in_linear_time(text: str, expected: object) -> None:
    assert evaluate(text, {"s": "a" * 200_000}) == expected


def test_back_references_are_refused_not_backtracked() -> None:
    budget = Budget()
    assert compile_expression('matches("aa", "(a)\\\\1")').evaluate(budget=budget) is None
    assert "back-references" in budget.notes[0]


@pytest.mark.parametrize("text", [
    "(" * 200 + "1" + ")" * 200,
    "+".join(["1"] * 500),
    "x" + ".a" * 500,
    "not(" * 100 + "true" + ")" * 100,
    "[" * 100 + "]" * 100,
    "x" * 30_000,
])
def test_deep_or_huge_source_is_refused_when_compiled(text: str) -> None:
    with pytest.raises(FeelSyntaxError):
        compile_expression(text)


def test_huge_numbers_are_null_not_slow() -> None:
    assert evaluate("10 ** 999999999") is None  # beyond decimal128: overflow is null
    assert evaluate("decimal(1, 6177)") is None
    assert evaluate("2 ** 0.5") is not None


def test_the_step_budget_is_counted_not_timed() -> None:
    """The same evaluation uses the same number of steps every time (so a workflow replays the same)."""
    counts = set()
    for _ in range(3):
        budget = Budget()
        compile_expression("count(for i in 1..5000 return i * 2)").evaluate(budget=budget)
        counts.add(budget.steps)
    assert len(counts) == 1 and 5000 < counts.pop() < MAX_STEPS
