"""Decision tables: model validation, input resolution and coercion, every hit policy and its errors."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from decisions.table import (
    DecisionInputError,
    DecisionTable,
    DecisionTableError,
    HitPolicy,
    HitPolicyViolation,
    evaluate,
    json_value,
    resolve_path,
)


def table(hit_policy: str, rules: list[tuple[str, list[str], list[str]]], *, aggregation: str | None = None,
          outputs: list[dict[str, Any]] | None = None,
          inputs: list[dict[str, Any]] | None = None) -> DecisionTable:
    return DecisionTable.model_validate({
        "name": "工单路由",
        "hit_policy": hit_policy,
        "aggregation": aggregation,
        "inputs": inputs or [
            {"id": "amount", "label": "退款金额", "expression": "ticket.amount", "type_ref": "number"},
            {"id": "vip", "label": "会员等级", "expression": "vip_level", "type_ref": "string"},
        ],
        "outputs": outputs or [
            {"id": "queue", "name": "queue", "type_ref": "string"},
            {"id": "priority", "name": "priority", "type_ref": "string",
             "allowed_values": ["urgent", "high", "normal"]},
        ],
        "rules": [{"id": rule_id, "input_entries": entries, "output_entries": outs}
                  for rule_id, entries, outs in rules],
    })


def ticket(amount: object, vip: object = "none") -> dict[str, Any]:
    return {"ticket": {"amount": amount}, "vip_level": vip}


OVERLAPPING = [
    ("small", ["< 500", "-"], ['"standard"', '"normal"']),
    ("vip", ["-", '"gold","platinum"'], ['"vip"', '"high"']),
    ("big", [">= 5000", "-"], ['"risk"', '"urgent"']),
    ("vip_too", ["-", '"gold","platinum"'], ['"vip"', '"high"']),
]


# --------------------------------------------------------------------------------------------- single hit


def test_unique_returns_the_one_match() -> None:
    routing = table("UNIQUE", OVERLAPPING[:3])
    result = evaluate(routing, ticket(1200, "gold"))
    assert result.value == {"queue": "vip", "priority": "high"}
    assert result.matched_rule_ids == ("vip",)
    assert result.selected_rule_ids == ("vip",)
    assert result.hit_policy is HitPolicy.UNIQUE


def test_unique_with_no_match_is_none() -> None:
    result = evaluate(table("UNIQUE", OVERLAPPING[:3]), ticket(1200, "silver"))
    assert result.value is None
    assert result.matched_rule_ids == ()


def test_unique_violation_names_the_rules_and_the_inputs() -> None:
    with pytest.raises(HitPolicyViolation) as caught:
        evaluate(table("UNIQUE", OVERLAPPING[:3]), ticket(100, "gold"))
    message = str(caught.value)
    assert "'small', 'vip'" in message
    assert "UNIQUE" in message and "工单路由" in message
    assert 'ticket.amount = 100' in message and 'vip_level = "gold"' in message
    assert caught.value.rule_ids == ("small", "vip")
    assert caught.value.inputs == {"ticket.amount": 100, "vip_level": "gold"}
    assert isinstance(caught.value, DecisionTableError)


def test_any_accepts_matches_that_agree() -> None:
    result = evaluate(table("ANY", OVERLAPPING), ticket(1200, "gold"))
    assert result.value == {"queue": "vip", "priority": "high"}
    assert result.matched_rule_ids == ("vip", "vip_too")
    assert result.selected_rule_ids == ("vip",)


def test_any_rejects_matches_that_disagree() -> None:
    with pytest.raises(HitPolicyViolation) as caught:
        evaluate(table("ANY", OVERLAPPING), ticket(100, "gold"))
    message = str(caught.value)
    assert "ANY" in message and "'small' and 'vip'" in message
    assert '"standard"' in message and '"vip"' in message
    assert caught.value.rule_ids == ("small", "vip", "vip_too")


def test_first_takes_the_first_match_in_rule_order() -> None:
    result = evaluate(table("FIRST", OVERLAPPING), ticket(9000, "gold"))
    assert result.value == {"queue": "vip", "priority": "high"}
    assert result.matched_rule_ids == ("vip", "big", "vip_too")
    assert result.selected_rule_ids == ("vip",)


def test_priority_takes_the_match_with_the_highest_priority_output() -> None:
    result = evaluate(table("PRIORITY", OVERLAPPING), ticket(9000, "gold"))
    assert result.value == {"queue": "risk", "priority": "urgent"}
    assert result.selected_rule_ids == ("big",)
    # equal priority: rule order breaks the tie
    assert evaluate(table("PRIORITY", OVERLAPPING), ticket(100, "gold")).selected_rule_ids == ("vip",)


def test_priority_compares_outputs_left_to_right() -> None:
    outputs = [
        {"id": "queue", "name": "queue", "type_ref": "string", "allowed_values": ["risk", "vip", "standard"]},
        {"id": "priority", "name": "priority", "type_ref": "string",
         "allowed_values": ["urgent", "high", "normal"]},
    ]
    rules = [
        ("a", ["-", "-"], ['"vip"', '"urgent"']),
        ("b", ["-", "-"], ['"vip"', '"high"']),
        ("c", ["-", "-"], ['"risk"', '"normal"']),
    ]
    assert evaluate(table("PRIORITY", rules, outputs=outputs), ticket(1)).selected_rule_ids == ("c",)
    result = evaluate(table("OUTPUT ORDER", rules, outputs=outputs), ticket(1))
    assert result.selected_rule_ids == ("c", "a", "b")


def test_single_hit_with_no_match_is_none_for_every_policy() -> None:
    for policy in ("UNIQUE", "ANY", "PRIORITY", "FIRST"):
        assert evaluate(table(policy, OVERLAPPING), ticket(1200, "silver")).value is None


# --------------------------------------------------------------------------------------------- multiple hit


def test_rule_order_lists_every_match_in_rule_order() -> None:
    result = evaluate(table("RULE ORDER", OVERLAPPING), ticket(9000, "gold"))
    assert result.value == [{"queue": "vip", "priority": "high"}, {"queue": "risk", "priority": "urgent"},
                            {"queue": "vip", "priority": "high"}]
    assert result.selected_rule_ids == ("vip", "big", "vip_too")


def test_output_order_sorts_by_output_priority_stably() -> None:
    result = evaluate(table("OUTPUT ORDER", OVERLAPPING), ticket(100, "gold"))
    assert result.selected_rule_ids == ("vip", "vip_too", "small")
    assert result.matched_rule_ids == ("small", "vip", "vip_too")
    assert isinstance(result.value, list)
    assert [item["priority"] for item in result.value] == ["high", "high", "normal"]


def test_collect_lists_matches_and_is_empty_without_any() -> None:
    assert evaluate(table("COLLECT", OVERLAPPING), ticket(100, "gold")).selected_rule_ids == (
        "small", "vip", "vip_too")
    assert evaluate(table("COLLECT", OVERLAPPING), ticket(1200, "none")).value == []
    assert evaluate(table("RULE ORDER", OVERLAPPING), ticket(1200, "none")).value == []


SCORES = [
    ("large", ["> 5000", "-"], ["40"]),
    ("vip", ["-", '"platinum"'], ["-10"]),
    ("any", ["-", "-"], ["2.5"]),
    ("unset", ["< 0", "-"], ["null"]),
]
SCORE_OUTPUT = [{"id": "points", "name": "points", "type_ref": "number"}]


@pytest.mark.parametrize(("aggregation", "expected"), [
    ("SUM", Decimal("32.5")),
    ("MIN", -10),
    ("MAX", 40),
    ("COUNT", 3),
])
def test_collect_aggregations(aggregation: str, expected: object) -> None:
    scores = table("COLLECT", SCORES, aggregation=aggregation, outputs=SCORE_OUTPUT)
    result = evaluate(scores, ticket(8000, "platinum"))
    assert result.value == expected
    assert result.selected_rule_ids == ("large", "vip", "any")


def test_collect_aggregations_skip_nulls_and_handle_no_match() -> None:
    scores = table("COLLECT", SCORES[:2] + SCORES[3:], aggregation="SUM", outputs=SCORE_OUTPUT)
    assert evaluate(scores, ticket(-5)).value is None  # only a null output matched
    assert evaluate(scores, ticket(100)).value is None
    counted = table("COLLECT", SCORES, aggregation="COUNT", outputs=SCORE_OUTPUT)
    assert evaluate(counted, ticket(-5)).value == 2
    assert evaluate(table("COLLECT", [], aggregation="COUNT", outputs=SCORE_OUTPUT), ticket(1)).value == 0


def test_collect_sum_of_integers_stays_an_integer() -> None:
    # FEEL numbers are decimals; what leaves a table as JSON (variables, API answers) is whole again
    scores = table("COLLECT", [("a", ["-", "-"], ["40"]), ("b", ["-", "-"], ["30"])], aggregation="SUM",
                   outputs=SCORE_OUTPUT)
    value = json_value(evaluate(scores, ticket(1)).value)
    assert value == 70 and isinstance(value, int)


# --------------------------------------------------------------------------------------------- inputs


def test_resolve_path() -> None:
    inputs = {"ticket": {"amount": 5, "shop": {"type": "direct"}}, "flat.key": 1}
    assert resolve_path(inputs, "ticket.amount") == 5
    assert resolve_path(inputs, "ticket.shop.type") == "direct"
    assert resolve_path(inputs, "flat.key") == 1
    assert resolve_path(inputs, "ticket.missing") is None
    assert resolve_path(inputs, "ticket.amount.deeper") is None
    assert resolve_path(inputs, "nothing") is None


def test_number_inputs_accept_decimal_strings_and_floats() -> None:
    routing = table("UNIQUE", OVERLAPPING[:3])
    assert evaluate(routing, ticket("4999.99")).value is None
    assert evaluate(routing, ticket("5000.00")).selected_rule_ids == ("big",)
    assert evaluate(routing, ticket(Decimal("499.99"))).selected_rule_ids == ("small",)
    assert evaluate(routing, ticket(499.99)).selected_rule_ids == ("small",)


def test_missing_inputs_are_null_and_match_only_dash_or_null() -> None:
    rules = [("no_amount", ["null", "-"], ['"manual"', '"normal"']),
             ("small", ["< 500", "-"], ['"standard"', '"normal"'])]
    routing = table("UNIQUE", rules)
    assert evaluate(routing, {"vip_level": "gold"}).selected_rule_ids == ("no_amount",)
    assert evaluate(routing, {"ticket": {"amount": None}}).selected_rule_ids == ("no_amount",)


@pytest.mark.parametrize(("amount", "vip", "problem"), [
    ("lots", "gold", "input '退款金额' (ticket.amount) is a number, got str 'lots'"),
    (True, "gold", "is a number, got bool"),
    ("NaN", "gold", "is a number"),
    (100, 3, "input '会员等级' (vip_level) is a string, got int 3"),
])
def test_inputs_of_the_wrong_type_raise(amount: object, vip: object, problem: str) -> None:
    with pytest.raises(DecisionInputError) as caught:
        evaluate(table("UNIQUE", OVERLAPPING[:3]), ticket(amount, vip))
    assert problem in str(caught.value)


def test_boolean_and_date_inputs() -> None:
    inputs = [{"id": "new", "expression": "customer.is_new", "type_ref": "boolean"},
              {"id": "day", "expression": "ticket.created_on", "type_ref": "date"}]
    outputs = [{"id": "queue", "name": "queue"}]
    rules = [
        ("new_customer_holiday", ["true", '[date("2024-10-01")..date("2024-10-07")]'], ['"holiday_desk"']),
        ("other", ["-", "-"], ['"standard"']),
    ]
    routing = table("FIRST", rules, inputs=inputs, outputs=outputs)

    def route(is_new: object, created: object) -> object:
        return evaluate(routing, {"customer": {"is_new": is_new}, "ticket": {"created_on": created}}).value

    assert route(True, date(2024, 10, 3)) == {"queue": "holiday_desk"}
    assert route("true", "2024-10-07") == {"queue": "holiday_desk"}
    assert route(False, "2024-10-03") == {"queue": "standard"}
    with pytest.raises(DecisionInputError, match="is a date"):
        route(True, datetime(2024, 10, 3, 9, 0))
    with pytest.raises(DecisionInputError, match="is a boolean"):
        route("yes", "2024-10-03")


def test_untyped_columns_take_values_as_they_are() -> None:
    inputs = [{"id": "level", "expression": "level"}]
    routing = table("FIRST", [("high", ["> 3"], ['"a"']), ("named", ['"gold"'], ['"b"'])],
                    inputs=inputs, outputs=[{"id": "o", "name": "o"}])
    assert evaluate(routing, {"level": 5}).value == {"o": "a"}
    assert evaluate(routing, {"level": "gold"}).value == {"o": "b"}
    assert evaluate(routing, {"level": "5"}).value is None  # a string is not compared with a number
    assert evaluate(routing, {"level": [1, 2]}).value is None  # a FEEL list: '> 3' of it is null, no match
    with pytest.raises(DecisionInputError, match="cannot be tested"):
        evaluate(routing, {"level": object()})


# --------------------------------------------------------------------------------------------- validation


def test_id_is_derived_from_the_name() -> None:
    assert table("UNIQUE", []).id == "工单路由"
    unnamed = DecisionTable.model_validate({"name": "3 level review", "outputs": [{"id": "o", "name": "o"}]})
    assert unnamed.id == "Decision_3_level_review"


@pytest.mark.parametrize(("changes", "problem"), [
    ({"hit_policy": "FIRST", "aggregation": "SUM"}, "aggregation SUM needs hit policy COLLECT"),
    ({"hit_policy": "COLLECT", "aggregation": "SUM"}, "needs exactly one output column"),
    ({"hit_policy": "SOMETIMES"}, "hit_policy"),
    ({"outputs": [{"id": "q", "name": "q", "type_ref": "string"}], "hit_policy": "PRIORITY"},
     "give at least one output allowed values"),
    ({"outputs": [{"id": "q", "name": "q", "type_ref": "string"}], "hit_policy": "COLLECT",
      "aggregation": "SUM"}, "needs a number output"),
    ({"outputs": [{"id": "q", "name": "q", "type_ref": "boolean"}], "hit_policy": "COLLECT",
      "aggregation": "MAX"}, "needs a number output"),
    ({"outputs": []}, "outputs"),
])
def test_table_level_validation(changes: dict[str, Any], problem: str) -> None:
    data: dict[str, Any] = {
        "name": "t", "inputs": [{"id": "a", "expression": "a", "type_ref": "number"}],
        "outputs": [{"id": "q", "name": "q"}, {"id": "p", "name": "p"}], "rules": [], **changes}
    with pytest.raises(ValidationError) as caught:
        DecisionTable.model_validate(data)
    assert problem in str(caught.value)


@pytest.mark.parametrize(("rule", "problem"), [
    (("r1", ["> 5"], ['"a"', '"high"']), "rule 'r1' has 1 input entries for 2 input columns"),
    (("r1", ["> 5", "-"], ['"a"']), "rule 'r1' has 1 output entries for 2 output columns"),
    (("r1", [">> 5", "-"], ['"a"', '"high"']), "rule 'r1', input '退款金额': '>> 5': expected an expression"),
    (("r1", ['"big"', "-"], ['"a"', '"high"']), "compares with a string but the column is a number"),
    (("r1", ["-", "< 3"], ['"a"', '"high"']), "compares with a number but the column is a string"),
    (("r1", ["-", "-"], ['"queue_a', '"high"']), "rule 'r1', output 'queue'"),
    (("r1", ["-", "-"], ["5", '"high"']), "5 is not a string"),
    (("r1", ["-", "-"], ['"a"', '"hgih"']), 'is not one of the allowed values "urgent", "high", "normal"'),
])
def test_rule_validation_names_the_rule_and_column(rule: tuple[str, list[str], list[str]],
                                                  problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        table("UNIQUE", [rule])
    assert problem in str(caught.value)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"inputs": [{"id": "a", "expression": "a"}, {"id": "a", "expression": "b"}]}, "duplicate input id 'a'"),
    ({"outputs": [{"id": "q", "name": "q"}, {"id": "p", "name": "q"}]}, "duplicate output name 'q'"),
    ({"rules": [{"id": "r", "input_entries": ["-"], "output_entries": ["1"]}] * 2}, "duplicate rule id 'r'"),
    ({"inputs": [{"id": "a", "expression": "amount * "}]}, "input 'amount *': expression"),
    ({"inputs": [{"id": "a", "expression": "a", "type_ref": "number", "allowed_values": ["x"]}]},
     'allowed value "x" of column \'a\' is not a number'),
])
def test_structure_validation(changes: dict[str, Any], problem: str) -> None:
    data: dict[str, Any] = {"name": "t", "inputs": [{"id": "a", "expression": "a"}],
                            "outputs": [{"id": "q", "name": "q"}], **changes}
    with pytest.raises(ValidationError) as caught:
        DecisionTable.model_validate(data)
    assert problem in str(caught.value)


def test_float_inputs_are_read_as_their_shortest_repr() -> None:
    inputs = [{"id": "rate", "expression": "rate", "type_ref": "number"}]
    rates = table("FIRST", [("ten", ["0.1"], ['"a"']), ("other", ["-"], ['"b"'])], inputs=inputs,
                  outputs=[{"id": "o", "name": "o"}])
    assert evaluate(rates, {"rate": 0.1}).selected_rule_ids == ("ten",)
    assert evaluate(rates, {"rate": 0.1 + 0.2 - 0.2}).selected_rule_ids == ("other",)  # 0.10000000000000003


def test_typed_allowed_values_survive_json() -> None:
    dated = DecisionTable.model_validate({
        "name": "rates", "hit_policy": "PRIORITY",
        "inputs": [{"id": "d", "expression": "d", "type_ref": "date",
                    "allowed_values": [date(2024, 10, 1), "2024-10-02"]}],
        "outputs": [{"id": "o", "name": "rate", "type_ref": "number",
                     "allowed_values": [Decimal("0.15"), 0.1, 0, "0.05"]}],
        "rules": [{"id": "r", "input_entries": ["-"], "output_entries": ["0.1"]}]})
    assert dated.outputs[0].allowed_values == [Decimal("0.15"), Decimal("0.1"), 0, Decimal("0.05")]
    assert dated.inputs[0].allowed_values == [date(2024, 10, 1), date(2024, 10, 2)]
    assert DecisionTable.model_validate_json(dated.model_dump_json()) == dated


def test_tables_are_immutable_and_serialisable() -> None:
    routing = table("PRIORITY", OVERLAPPING)
    with pytest.raises(ValidationError):
        routing.name = "other"  # type: ignore[misc]
    again = DecisionTable.model_validate_json(routing.model_dump_json())
    assert again == routing
    assert routing.rule("big").output_entries == ['"risk"', '"urgent"']
    with pytest.raises(KeyError):
        routing.rule("nope")
