"""logic.decision_table without Temporal: inputs from the context, outputs into variables, ports,
runtime errors, validation problems, JSON-safe values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from decisions.dmn_xml import load_decision_table
from decisions.table import json_value
from engine.expressions import ExpressionError
from engine.nodes.base import Context
from engine.nodes.logic_decision_table import DecisionTableConfig, DecisionTableNode
from engine.registry import default_registry

DMN = (Path(__file__).resolve().parents[1] / "decisions" / "data" / "refund_routing.dmn").read_bytes()
ROUTING = load_decision_table(DMN, "refund_routing").model_dump(mode="json")


def config(table: dict[str, Any], **extra: Any) -> DecisionTableConfig:
    return DecisionTableConfig.model_validate({"table": table, **extra})


def decide(cfg: DecisionTableConfig, ctx: Context) -> str:
    return DecisionTableNode.decide(cfg, ctx, "journey/x/c1", "route")


def table(hit_policy: str, rules: list[tuple[str, str, str]], aggregation: str | None = None,
          output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "t", "hit_policy": hit_policy, "aggregation": aggregation,
            "inputs": [{"id": "n", "expression": "vars.n", "type_ref": "number"}],
            "outputs": [output or {"id": "o", "name": "o"}],
            "rules": [{"id": rid, "input_entries": [entry], "output_entries": [out]} for rid, entry, out in rules]}


def test_the_node_is_registered_for_every_flow_kind() -> None:
    node_type = default_registry().get("logic.decision_table")
    assert node_type is DecisionTableNode and node_type.origin == "builtin"
    assert node_type.category == "logic" and set(node_type.kinds) == {"journey", "ticket", "settlement"}
    assert node_type.schema()["properties"]["table"]["format"] == "decision-table"


def test_the_shipped_routing_table_works_as_it_is(tmp_path: Path) -> None:
    cfg = config(ROUTING, port_output="queue")
    assert DecisionTableNode.check(cfg) == []
    assert DecisionTableNode.output_ports(cfg) == [
        "refund_risk", "refund_senior", "refund_vip", "refund_standard", "default"]
    # ticket.… reads vars.ticket when the flow keeps the ticket there …
    kept = Context(customer={"vip_level": "gold"}, vars={"ticket": {"refund_amount": "2500.00"}})
    assert decide(cfg, kept) == "refund_senior"
    assert kept.vars == {"ticket": {"refund_amount": "2500.00"}, "queue": "refund_senior", "priority": "high",
                         "review_levels": 2}
    # … else the triggering event's payload (a ticket.created event carries the ticket)
    created = Context(customer={"vip_level": "none"}, event={"type": "ticket.created",
                                                             "payload": {"refund_amount": 99}})
    assert decide(cfg, created) == "refund_standard"
    assert decide(cfg, Context(customer={"vip_level": "none"})) == "default"  # no amount: no rule


def test_without_port_output_matches_leave_by_out_and_misses_by_the_default_port() -> None:
    cfg = config(table("FIRST", [("small", "< 10", '"s"')]), default_port="no_match", result_variable="size")
    assert DecisionTableNode.output_ports(cfg) == ["out", "no_match"]
    ctx = Context(vars={"n": 3})
    assert decide(cfg, ctx) == "out" and ctx.vars == {"n": 3, "size": {"o": "s"}}
    ctx = Context(vars={"n": 30})
    assert decide(cfg, ctx) == "no_match" and ctx.vars["size"] == {"o": None}


@pytest.mark.parametrize(("hit_policy", "aggregation", "expected"), [
    ("RULE ORDER", None, [5, "2.5", 1]),
    ("COLLECT", None, [5, "2.5", 1]),
    ("COLLECT", "SUM", "8.5"),
    ("COLLECT", "MAX", 5),
    ("COLLECT", "COUNT", 3),
])
def test_multiple_hits_set_lists_or_numbers_and_leave_by_out(hit_policy: str, aggregation: str | None,
                                                             expected: object) -> None:
    rules = [("a", "> 0", "5"), ("b", "> 1", "2.5"), ("c", "> 2", "1"), ("d", "> 100", "7")]
    cfg = config(table(hit_policy, rules, aggregation), allow_gaps=True)
    assert DecisionTableNode.output_ports(cfg) == ["out"]
    ctx = Context(vars={"n": 3})
    assert decide(cfg, ctx) == "out"
    assert ctx.vars["o"] == expected


def test_output_order_sorts_by_priority() -> None:
    output = {"id": "o", "name": "level", "type_ref": "string", "allowed_values": ["high", "low"]}
    cfg = config(table("OUTPUT ORDER", [("a", "> 0", '"low"'), ("b", "> 1", '"high"')], output=output),
                 allow_gaps=True)
    ctx = Context(vars={"n": 5})
    decide(cfg, ctx)
    assert ctx.vars["level"] == ["high", "low"]


def test_boolean_and_number_outputs_name_ports() -> None:
    flag = config(table("UNIQUE", [("yes", "> 0", "true"), ("no", "<= 0", "false")],
                        output={"id": "o", "name": "ok", "type_ref": "boolean"}), port_output="ok")
    assert DecisionTableNode.output_ports(flag) == ["true", "false", "default"]
    assert decide(flag, Context(vars={"n": 1})) == "true"
    levels = config(table("UNIQUE", [("one", "< 10", "1"), ("two", ">= 10", "2")]), port_output="o")
    assert decide(levels, Context(vars={"n": 12})) == "2"


def test_runtime_errors_are_expression_errors_naming_rules_and_inputs() -> None:
    any_policy = config(table("ANY", [("a", "> 0", '"x"'), ("b", "> 1", '"y"')]), allow_gaps=True)
    with pytest.raises(ExpressionError, match="hit policy ANY but matching rules 'a' and 'b'"):
        decide(any_policy, Context(vars={"n": 5}))
    typed = config(table("FIRST", [("a", "-", '"x"')]))
    with pytest.raises(ExpressionError, match=r"input 'vars.n' \(vars.n\) is a number, got str 'many'"):
        decide(typed, Context(vars={"n": "many"}))
    # a nested value is a FEEL context now (no longer refused): '-' matches it
    assert decide(config({**table("FIRST", [("a", "-", '"x"')]), "inputs": [{"id": "n", "expression": "vars.n"}]}),
                  Context(vars={"n": {"nested": 1}})) == "out"


def test_many_findings_are_capped_in_the_problems() -> None:
    rules = [(f"r{i}", f"> {i}", '"x"') for i in range(8)]  # every pair overlaps: 28 findings
    problems = DecisionTableNode.check(config(table("UNIQUE", rules)))
    overlaps = [p for p in problems if p.code == "decision_overlap"]
    assert len(overlaps) == 6 and overlaps[-1].message == "… and 23 more overlaps"
    assert overlaps[0].message.startswith("rules 'r0' and 'r1' both match") and "FIRST" in overlaps[0].fix
    assert [p.code for p in problems if p.code != "decision_overlap"] == ["decision_gap"]  # n <= 0


def test_unreachable_rules_are_problems() -> None:
    rules = [("all", "-", '"x"'), ("never", "> 5", '"y"')]
    problems = DecisionTableNode.check(config(table("FIRST", rules)))
    assert [(p.code, p.field) for p in problems] == [("decision_unreachable", "table.rules")]
    assert "rule 'never' is never selected under FIRST" in problems[0].message


def test_inputs_are_feel_so_jinja_filters_are_refused_naming_the_input() -> None:
    # input expressions are FEEL since decision tables speak DMN: number(ticket.amount), not ticket.amount|int
    bad = {**table("FIRST", [("a", "-", '"x"')]), "inputs": [{"id": "n", "expression": "ticket.amount|int"}]}
    with pytest.raises(ValidationError, match=r"input 'ticket.amount\|int': expression: .*unexpected '\|'"):
        config(bad)
    unknown = {**table("FIRST", [("a", "< limit", '"x"')])}
    [problem] = [p for p in DecisionTableNode.check(config(unknown)) if p.code == "bad_expression"]
    assert problem.field == "table.rules" and "unknown name 'limit'" in problem.message and "vars.limit" in problem.fix


def test_empty_optional_fields_from_the_form_mean_none() -> None:
    cfg = config(table("FIRST", [("a", "-", '"x"')]), port_output="", result_variable="")
    assert cfg.port_output is None and cfg.result_variable is None


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.150"), "0.15"), (Decimal("42.0"), 42), (0.1, "0.1"), (3, 3), (True, True), (None, None),
    (date(2026, 11, 23), "2026-11-23"), ({"a": [Decimal("1.5")]}, {"a": ["1.5"]}),
    (Decimal("1E+2"), 100),
])
def test_json_values_never_hold_floats(value: object, expected: object) -> None:
    assert json_value(value) == expected
