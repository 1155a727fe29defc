"""Static analysis of decision tables: overlaps, gaps, unreachable rules; soundness against evaluate."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decisions.analysis import Finding, analyse
from decisions.feel import compile_unary_tests, parse_unary_tests
from decisions.table import DecisionTable, HitPolicyViolation, evaluate


def table(rules: list[tuple[str, list[str], str]], *, hit_policy: str = "UNIQUE",
          inputs: list[dict[str, Any]] | None = None) -> DecisionTable:
    return DecisionTable.model_validate({
        "name": "routing",
        "hit_policy": hit_policy,
        "inputs": inputs if inputs is not None else [
            {"id": "amount", "label": "amount", "expression": "amount", "type_ref": "number"},
            {"id": "vip", "label": "vip", "expression": "vip", "type_ref": "string",
             "allowed_values": ["none", "silver", "gold"]},
        ],
        "outputs": [{"id": "queue", "name": "queue", "type_ref": "string"}],
        "rules": [{"id": rule_id, "input_entries": entries, "output_entries": [output]}
                  for rule_id, entries, output in rules],
    })


def kinds(findings: list[Finding]) -> list[str]:
    return [finding.kind for finding in findings]


COMPLETE = [
    ("small", ["< 200", "-"], '"standard"'),
    ("mid_regular", ["[200..2000)", 'not("gold")'], '"standard"'),
    ("mid_gold", ["[200..2000)", '"gold"'], '"vip"'),
    ("large", [">= 2000", "-"], '"senior"'),
]


def test_a_complete_disjoint_table_has_no_findings() -> None:
    assert analyse(table(COMPLETE)) == []


def test_overlap_under_unique_names_both_rules_and_the_shared_region() -> None:
    rules = [*COMPLETE, ("gold_any", ["> 1000", '"gold"'], '"vip"')]
    findings = analyse(table(rules))
    assert kinds(findings) == ["overlap", "overlap"]
    first, second = findings
    assert first.rule_ids == ["mid_gold", "gold_any"]
    assert first.example == {"amount": "(1000..2000)", "vip": '"gold"'}
    assert "rules 'mid_gold' and 'gold_any' both match" in first.message
    assert "UNIQUE" in first.message
    assert second.rule_ids == ["large", "gold_any"]
    assert second.example == {"amount": ">= 2000", "vip": '"gold"'}
    # the reported region really is matched by both
    assert set(pytest_raises_rules(table(rules), {"amount": 1500, "vip": "gold"})) == {"mid_gold", "gold_any"}


def pytest_raises_rules(decision: DecisionTable, inputs: dict[str, Any]) -> tuple[str, ...]:
    try:
        evaluate(decision, inputs)
    except HitPolicyViolation as violation:
        return violation.rule_ids
    return ()


def test_touching_ranges_do_not_overlap_but_shared_endpoints_do() -> None:
    assert analyse(table([("a", ["[0..10)", "-"], '"a"'), ("b", ["[10..20]", "-"], '"b"'),
                          ("rest", ["< 0, > 20", "-"], '"c"')])) == []
    findings = analyse(table([("a", ["[0..10]", "-"], '"a"'), ("b", ["[10..20]", "-"], '"b"'),
                              ("rest", ["< 0, > 20", "-"], '"c"')]))
    assert kinds(findings) == ["overlap"]
    assert findings[0].example["amount"] == "10"


def test_overlaps_under_any_only_count_when_outputs_differ() -> None:
    rules = [*COMPLETE, ("also_vip", ["> 1000", '"gold"'], '"vip"')]
    findings = analyse(table(rules, hit_policy="ANY"))
    assert kinds(findings) == ["overlap"]
    assert findings[0].rule_ids == ["large", "also_vip"]
    assert "different outputs" in findings[0].message


def test_overlaps_are_not_reported_for_policies_that_allow_them() -> None:
    rules = [*COMPLETE, ("gold_any", ["> 1000", '"gold"'], '"vip"')]
    for policy in ("PRIORITY", "RULE ORDER", "COLLECT"):
        decision = table(rules, hit_policy=policy) if policy != "PRIORITY" else DecisionTable.model_validate({
            **table(rules).model_dump(), "hit_policy": "PRIORITY",
            "outputs": [{"id": "queue", "name": "queue", "type_ref": "string",
                         "allowed_values": ["vip", "senior", "standard"]}]})
        assert analyse(decision) == []


def test_gap_between_number_ranges_is_one_merged_finding() -> None:
    rules = [("small", ["< 200", "-"], '"a"'), ("large", ["> 500", "-"], '"b"')]
    findings = analyse(table(rules))
    assert kinds(findings) == ["gap"]
    assert findings[0].example == {"amount": "[200..500]", "vip": "-"}
    assert findings[0].message == "no rule matches amount: [200..500]"


def test_gap_in_an_enumerated_column() -> None:
    rules = [("small", ["< 200", "-"], '"a"'), ("rest", [">= 200", '"none","silver"'], '"b"')]
    findings = analyse(table(rules))
    assert kinds(findings) == ["gap"]
    assert findings[0].example == {"amount": ">= 200", "vip": '"gold"'}


def test_gaps_in_strings_without_allowed_values_include_any_other_value() -> None:
    inputs = [{"id": "channel", "label": "channel", "expression": "channel", "type_ref": "string"}]
    findings = analyse(table([("a", ['"wecom"'], '"a"'), ("b", ['"taobao", "jd"'], '"b"')], inputs=inputs))
    assert kinds(findings) == ["gap"]
    assert findings[0].example == {"channel": 'not("wecom", "taobao", "jd")'}
    assert analyse(table([("a", ['"wecom"'], '"a"'), ("b", ['not("wecom")'], '"b"')], inputs=inputs)) == []


def test_boolean_gaps_and_several_regions() -> None:
    inputs = [{"id": "new", "label": "new", "expression": "new", "type_ref": "boolean"},
              {"id": "amount", "label": "amount", "expression": "amount", "type_ref": "number"}]
    rules = [("a", ["true", "< 100"], '"a"'), ("b", ["false", ">= 100"], '"b"')]
    findings = analyse(table(rules, inputs=inputs))
    assert sorted(tuple(finding.example.values()) for finding in findings) == [
        ("false", "< 100"), ("true", ">= 100")]


def test_integer_columns_have_no_gaps_between_consecutive_whole_numbers() -> None:
    inputs = [{"id": "n", "label": "refunds", "expression": "n", "type_ref": "integer"}]
    rules = [("few", ["[0..2]"], '"a"'), ("many", ["[3..10]"], '"b"'), ("rest", ["< 0, > 10"], '"c"')]
    assert analyse(table(rules, inputs=inputs)) == []
    inputs[0]["type_ref"] = "number"  # real numbers: 2.5 falls through
    findings = analyse(table(rules, inputs=inputs))
    assert kinds(findings) == ["gap"]
    assert findings[0].example == {"refunds": "(2..3)"}


def test_date_columns_are_discrete_days() -> None:
    inputs = [{"id": "d", "label": "created", "expression": "d", "type_ref": "date"}]
    rules = [("before", ['<= date("2024-09-30")'], '"a"'), ("after", ['>= date("2024-10-01")'], '"b"')]
    assert analyse(table(rules, inputs=inputs)) == []
    rules[1] = ("after", ['> date("2024-10-07")'], '"b"')
    findings = analyse(table(rules, inputs=inputs))
    assert [finding.example for finding in findings] == [
        {"created": '(date("2024-09-30")..date("2024-10-07")]'}]


def test_null_is_analysed_where_an_entry_mentions_it() -> None:
    rules = [("missing", ["null", "-"], '"manual"'), ("any_amount", ["-", "-"], '"auto"')]
    findings = analyse(table(rules))
    assert kinds(findings) == ["overlap"]
    assert findings[0].example["amount"] == "null"
    rules = [("missing", ["null", "-"], '"manual"'), ("known", ["not(null)", "-"], '"auto"')]
    assert analyse(table(rules)) == []


def test_a_value_outside_the_allowed_values_makes_the_rule_unreachable() -> None:
    rules = [*COMPLETE, ("typo", ["-", '"glod"'], '"vip"')]
    findings = analyse(table(rules))
    assert kinds(findings) == ["unreachable"]
    assert findings[0].message == (
        "rule 'typo' matches no possible input: '\"glod\"' excludes every value of input 'vip'")


def test_examples_name_inputs_with_the_same_label_apart() -> None:
    inputs = [{"id": "a", "label": "amount", "expression": "a", "type_ref": "number"},
              {"id": "b", "label": "amount", "expression": "b", "type_ref": "number"}]
    findings = analyse(table([("r", ["> 0", "> 0"], '"x"')], inputs=inputs))
    assert findings[0].example == {"amount (a)": "<= 0", "amount (b)": "-"}


def test_a_table_without_rules_is_one_gap() -> None:
    assert kinds(analyse(table([]))) == ["gap"]


def test_first_reports_rules_shadowed_by_earlier_rules() -> None:
    rules = [("small", ["< 1000", "-"], '"a"'), ("large", [">= 1000", "-"], '"b"'),
             ("gold", ["-", '"gold"'], '"vip"'), ("mid", ["[500..800]", "-"], '"c"')]
    findings = analyse(table(rules, hit_policy="FIRST"))
    assert kinds(findings) == ["unreachable", "unreachable"]
    assert findings[0].rule_ids == ["gold", "small", "large"]
    assert "rule 'gold' is never selected under FIRST" in findings[0].message
    # every earlier rule that matches some of its inputs
    assert findings[1].rule_ids == ["mid", "small", "gold"]
    # moved to the top, the gold rule is reachable again
    assert analyse(table([rules[2], *rules[:2]], hit_policy="FIRST")) == []


def test_a_rule_that_can_match_nothing_is_unreachable() -> None:
    inputs = [{"id": "n", "label": "refunds", "expression": "n", "type_ref": "integer"}]
    findings = analyse(table([("impossible", ["(1..2)"], '"a"'), ("all", ["-"], '"b"')], hit_policy="FIRST",
                             inputs=inputs))
    assert kinds(findings) == ["unreachable"]
    assert "matches no possible input" in findings[0].message


def test_unanalysable_columns_are_reported_and_overlaps_become_possible() -> None:
    inputs = [{"id": "name", "label": "name", "expression": "name", "type_ref": "string"},
              {"id": "amount", "label": "amount", "expression": "amount", "type_ref": "number"}]
    rules = [("a_to_m", ['< "m"', "< 100"], '"a"'), ("n_to_z", ['>= "m"', "< 100"], '"b"'),
             ("large", ["-", ">= 100"], '"c"')]
    findings = analyse(table(rules, inputs=inputs))
    assert kinds(findings) == ["unanalysable", "possible_overlap"]
    assert "string comparisons" in findings[0].message
    assert findings[1].rule_ids == ["a_to_m", "n_to_z"]
    # with allowed values the column is analysable again
    inputs[0]["allowed_values"] = ["alice", "zoe"]
    assert analyse(table(rules, inputs=inputs)) == []


def test_untyped_columns_infer_their_kind_and_mixed_ones_are_unanalysable() -> None:
    inputs = [{"id": "x", "label": "x", "expression": "x"}]
    assert kinds(analyse(table([("a", ["< 5"], '"a"'), ("b", ["> 5"], '"b"')], inputs=inputs))) == ["gap"]
    findings = analyse(table([("a", ["< 5"], '"a"'), ("b", ['"five"'], '"b"')], inputs=inputs))
    assert kinds(findings) == ["unanalysable", "possible_overlap"]
    assert "mix number and string" in findings[0].message


def test_gap_search_is_bounded() -> None:
    inputs = [{"id": f"c{i}", "label": f"c{i}", "expression": f"c{i}", "type_ref": "integer"}
              for i in range(4)]
    rules = [(f"r{i}", [f"= {i}", f"= {i}", f"= {i}", f"= {i}"], '"x"') for i in range(20)]
    findings = analyse(table(rules, inputs=inputs))
    assert kinds(findings)[-1] == "truncated"
    assert kinds(findings).count("gap") == 50


# --------------------------------------------------------------------------------------------- soundness

ENTRIES = st.sampled_from(["-", "< 3", "<= 3", "> 5", ">= 5", "[2..6]", "(2..6)", "[3..4)", "4", "not(4)",
                           "1, 7", "not([1..3])", "null"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(ENTRIES, ENTRIES), min_size=1, max_size=5))
def test_analysis_agrees_with_evaluation(entries: list[tuple[str, str]]) -> None:
    """Sampled inputs: two matches ⇒ a reported overlap; no match ⇔ inside a reported gap region.

    Null is part of a column's domain only where some entry of that column mentions null.
    """
    inputs = [{"id": name, "label": name, "expression": name, "type_ref": "number"} for name in ("x", "y")]
    decision = table([(f"r{i}", list(pair), f'"{i}"') for i, pair in enumerate(entries)], inputs=inputs)
    parsed = [(rule.id, [parse_unary_tests(entry) for entry in rule.input_entries]) for rule in decision.rules]
    findings = analyse(decision)
    overlapping = {tuple(f.rule_ids) for f in findings if f.kind == "overlap"}
    gaps = [[parse_unary_tests(f.example["x"]), parse_unary_tests(f.example["y"])]
            for f in findings if f.kind == "gap"]
    null_in_domain = [any(pair[column] == "null" for pair in entries) for column in (0, 1)]
    # one value per atom of the endpoints 1…7 the entries use, and null
    samples: list[Decimal | None] = [None, Decimal(-1), *[Decimal(n) / 2 for n in range(2, 15)], Decimal(8)]
    for x, y in itertools.product(samples, repeat=2):
        in_domain = all(value is not None or null_in_domain[c] for c, value in enumerate((x, y)))
        # what evaluate() matches: every input entry of the rule matches its value
        matched = [rule_id for rule_id, tests in parsed if tests[0].matches(x) and tests[1].matches(y)]
        in_gap = any(gap[0].matches(x) and gap[1].matches(y) for gap in gaps)
        if not in_domain:
            continue
        for pair in itertools.combinations(matched, 2):
            assert pair in overlapping, (pair, x, y)
        assert in_gap == (not matched), (x, y, matched, [f.example for f in findings if f.kind == "gap"])


def test_columns_that_only_test_for_null() -> None:
    inputs = [{"id": "note", "label": "note", "expression": "note"}]
    assert analyse(table([("none", ["null"], '"a"'), ("some", ["not(null)"], '"b"')], inputs=inputs)) == []
    findings = analyse(table([("none", ["null"], '"a"')], inputs=inputs))
    assert [finding.example for finding in findings] == [{"note": "not(null)"}]


def test_the_analysis_reads_string_literals_as_the_evaluator_does() -> None:
    """One string grammar: an unknown escape keeps its backslash, ``\\U`` takes six digits, a surrogate pair
    written as two ``\\u`` escapes is one character — what the analysis compares is what a rule matches."""
    text = r'"a\qb", "x\U01F600", "\ud83d\ude00", "t\bf\f"'
    analysed = [test.value for test in parse_unary_tests(text).tests]  # type: ignore[union-attr]
    evaluated = [test.operand.value for test in compile_unary_tests(text).tree.tests]  # type: ignore[attr-defined]
    assert analysed == evaluated == ["a\\qb", "x😀", "😀", "t\bf\f"]
