"""The validator reports every problem of a flow at once, each with node, field, fix and code (engine.validate)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.flow import Flow
from engine.nodes.base import Problem
from engine.validate import Validation, check_expression, validate


def welcome() -> dict[str, Any]:
    """A valid journey touching most node kinds (DESIGN.md §3 example, completed)."""
    return {
        "schema": "tideflow/flow@1",
        "id": "welcome",
        "name": "新客欢迎",
        "settings": {
            "exit_on": [{"event": "customer.unsubscribed"}],
            "goal": {"event": "order.paid", "within": "P14D"},
        },
        "nodes": [
            {"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"}},
            {"id": "hello", "type": "action.send_message", "config": {"template": "你好 {{ customer.name }}"}},
            {"id": "wait1", "type": "wait.delay", "config": {"duration": "P1D"}},
            {"id": "bought", "type": "logic.condition", "config": {"expr": "customer.orders_count > 0"}},
            {"id": "tag", "type": "action.tag", "config": {"add": ["尝鲜客"]}},
            {"id": "coupon", "type": "action.send_message", "config": {"template": "送您一张券"}},
            {"id": "wait_order", "type": "wait.event", "config": {"event": "order.paid", "timeout": "P7D"}},
            {"id": "won", "type": "logic.goal"},
            {"id": "done", "type": "logic.exit"},
        ],
        "edges": [
            {"from": "start", "to": "hello"},
            {"from": "hello", "to": "wait1"},
            {"from": "wait1", "to": "bought"},
            {"from": "bought", "port": "yes", "to": "tag"},
            {"from": "bought", "port": "no", "to": "coupon"},
            {"from": "coupon", "to": "wait_order"},
            {"from": "wait_order", "port": "event", "to": "won"},
            {"from": "wait_order", "port": "timeout", "to": "done"},
        ],
    }


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def codes(result: Validation) -> list[str]:
    return [p.code for p in result.problems]


def only(result: Validation, code: str) -> Problem:
    """The single problem with this code; every problem must say how to fix it."""
    found = [p for p in result.problems if p.code == code]
    assert len(found) == 1, result.problems
    assert all(p.fix and p.message for p in result.problems)
    return found[0]


def tiny(*nodes: dict[str, Any], edges: list[dict[str, str]] | None = None, **envelope: Any) -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": "tiny", "name": "T", "nodes": list(nodes), "edges": edges or [],
            **envelope}


# -- valid ---------------------------------------------------------------------------------------
def test_a_valid_flow_has_no_problems() -> None:
    result = validate(welcome())
    assert result.ok and result.problems == []
    assert result.flow is not None and result.flow.id == "welcome"
    assert set(result.nodes) == {n["id"] for n in welcome()["nodes"]}
    assert result.nodes["bought"].ports == ["yes", "no"]
    assert result.nodes["wait1"].config.model_dump() == {"duration": "P1D"}


def test_a_flow_model_is_accepted_too() -> None:
    assert validate(Flow.model_validate(welcome())).ok


def test_switch_and_split_ports_come_from_config() -> None:
    doc = tiny(
        {"id": "s", "type": "trigger.api"},
        {"id": "sw", "type": "logic.switch", "config": {"cases": [
            {"port": "vip", "expr": "customer.vip_level >= 3"}, {"port": "new", "expr": "not customer.orders_count"}]}},
        {"id": "ab", "type": "logic.split", "config": {"branches": [
            {"port": "A", "weight": 45}, {"port": "B", "weight": 45}, {"port": "control", "weight": 10}]}},
        {"id": "x", "type": "logic.exit"},
        edges=[{"from": "s", "to": "sw"}, {"from": "sw", "port": "vip", "to": "ab"},
               {"from": "sw", "port": "default", "to": "x"}],
    )
    result = validate(doc)
    assert result.ok, result.problems
    assert result.nodes["sw"].ports == ["vip", "new", "default"]
    assert result.nodes["ab"].ports == ["A", "B", "control"]


# -- one test per problem kind -------------------------------------------------------------------
def test_unknown_node_type_suggests_the_closest() -> None:
    doc = welcome()
    node(doc, "hello")["type"] = "action.send_mesage"
    p = only(validate(doc), "unknown_type")
    assert (p.node, p.field) == ("hello", "type")
    assert "unknown node type 'action.send_mesage'" in p.message
    assert p.fix == "did you mean 'action.send_message'?"


def test_unknown_node_type_with_nothing_close_points_to_the_catalogue() -> None:
    doc = welcome()
    node(doc, "hello")["type"] = "zzz"
    p = only(validate(doc), "unknown_type")
    assert "GET /api/node-types" in p.fix


@pytest.mark.parametrize(
    ("node_id", "config", "field", "code"),
    [
        ("wait1", {"duration": "one day"}, "config.duration", "bad_value"),
        ("hello", {"channel": "wecom"}, "config.template", "missing_field"),
        ("hello", {"template": "hi", "chanel": "wecom"}, "config.chanel", "unknown_field"),
        ("hello", {"template": "hi", "channel": "pigeon"}, "config.channel", "bad_value"),
        ("tag", {}, "config", "bad_value"),  # a model-level check names the config itself
        ("wait_order", {"event": "order.paid", "timeout": "P1Y"}, "config.timeout", "bad_value"),
    ],
)
def test_bad_config_names_the_field(node_id: str, config: dict[str, Any], field: str, code: str) -> None:
    doc = welcome()
    node(doc, node_id)["config"] = config
    result = validate(doc)
    assert [(p.node, p.field, p.code) for p in result.problems] == [(node_id, field, code)]
    assert result.problems[0].fix


def test_bad_nested_config_names_the_path() -> None:
    doc = tiny(
        {"id": "s", "type": "trigger.api"},
        {"id": "sw", "type": "logic.switch", "config": {"cases": [{"port": "ok", "expr": "true"},
                                                                  {"port": "bad port", "expr": "true"}]}},
        edges=[{"from": "s", "to": "sw"}],
    )
    result = validate(doc)
    assert [(p.node, p.field) for p in result.problems] == [("sw", "config.cases.1.port")]


def test_node_type_checks_beyond_the_model_name_the_field() -> None:
    doc = tiny(
        {"id": "s", "type": "trigger.api"},
        {"id": "ab", "type": "logic.split", "config": {"branches": [{"port": "A", "weight": 0},
                                                                    {"port": "A", "weight": 0}]}},
        {"id": "w", "type": "wait.until", "config": {"weekdays": [0, 8]}},
        edges=[{"from": "s", "to": "ab"}, {"from": "ab", "port": "A", "to": "w"}],
    )
    fields = [(p.node, p.field, p.message) for p in validate(doc).problems]
    assert ("ab", "config.branches", "branch port names repeat") in fields
    assert ("ab", "config.branches", "all weights are zero") in fields
    assert ("w", "config.weekdays", "[0, 8] are not weekdays") in fields


def test_model_level_config_errors_name_the_config() -> None:
    doc = tiny({"id": "s", "type": "trigger.schedule", "config": {"cron": "0 2 * * *", "every": "P1D"}},
               {"id": "x", "type": "logic.exit"}, edges=[{"from": "s", "to": "x"}])
    result = validate(doc)
    assert [(p.node, p.field) for p in result.problems if p.node] == [("s", "config")]
    assert "exactly one of 'cron' or 'every'" in result.problems[0].message


def test_dangling_edge_from_nowhere() -> None:
    doc = welcome()
    doc["edges"].append({"from": "ghost", "to": "hello"})
    p = only(validate(doc), "dangling_edge")
    assert (p.node, p.field) == (None, "edges.8")
    assert "'ghost'" in p.message


def test_dangling_edge_to_nowhere() -> None:
    doc = welcome()
    doc["edges"][-1]["to"] = "ghost"
    p = only(validate(doc), "dangling_edge")
    assert (p.node, p.field) == ("wait_order", "edges.7")
    assert "goes to 'ghost'" in p.message


def test_duplicate_edge() -> None:
    doc = welcome()
    doc["edges"].append({"from": "hello", "to": "wait1"})
    p = only(validate(doc), "duplicate_edge")
    assert (p.node, p.field) == ("hello", "edges.8")
    assert "is there twice" in p.message and p.fix == "delete the duplicate"


def test_one_port_cannot_fan_out_to_two_nodes() -> None:
    doc = welcome()
    doc["edges"].append({"from": "bought", "port": "yes", "to": "coupon"})
    p = only(validate(doc), "duplicate_edge")
    assert p.node == "bought"
    assert "port 'yes' already leads to 'tag'" in p.message
    assert "logic.split" in p.fix


def test_bad_port_name_lists_the_ports() -> None:
    doc = welcome()
    doc["edges"][3]["port"] = "maybe"
    result = validate(doc)
    p = only(result, "bad_port")
    assert (p.node, p.field) == ("bought", "edges.3")
    assert "'logic.condition' has no port 'maybe'" in p.message
    assert p.fix == "use one of: yes, no"
    assert codes(result) == ["bad_port", "unreachable"]  # 'tag' is now cut off


def test_end_nodes_have_no_ports() -> None:
    doc = welcome()
    doc["edges"].append({"from": "done", "to": "hello"})
    p = only(validate(doc), "bad_port")
    assert "(none: this node ends the path)" in p.fix


def test_edge_into_trigger() -> None:
    doc = welcome()
    doc["edges"].append({"from": "tag", "to": "start"})
    p = only(validate(doc), "edge_into_trigger")
    assert (p.node, p.field) == ("start", "edges.8")


def test_unconnected_required_port() -> None:
    doc = welcome()
    doc["edges"] = [e for e in doc["edges"] if e["from"] != "wait1"]
    result = validate(doc)
    p = only(result, "unconnected_port")
    assert (p.node, p.field) == ("wait1", "ports.out")
    assert sorted(q.node for q in result.problems if q.code == "unreachable") == [
        "bought", "coupon", "done", "tag", "wait_order", "won"]


def test_unconnected_trigger() -> None:
    p = only(validate(tiny({"id": "s", "type": "trigger.event", "config": {"event": "order.paid"}})),
             "unconnected_port")
    assert (p.node, p.field) == ("s", "ports.out")


def test_optional_ports_may_stay_open() -> None:
    doc = welcome()
    doc["edges"] = [e for e in doc["edges"] if e["from"] != "wait_order" or e["port"] != "timeout"]
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "done"]
    assert validate(doc).ok


def test_unreachable_node() -> None:
    doc = welcome()
    doc["nodes"].append({"id": "orphan", "type": "action.tag", "config": {"add": ["x"]}})
    p = only(validate(doc), "unreachable")
    assert (p.node, p.field) == ("orphan", None)


def test_no_trigger() -> None:
    doc = welcome()
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "start"]
    doc["edges"] = doc["edges"][1:]
    p = only(validate(doc), "no_trigger")
    assert (p.node, p.field) == (None, "nodes")
    assert "trigger.event" in p.fix


def test_no_nodes_at_all() -> None:
    p = only(validate(tiny()), "no_trigger")
    assert p.message == "the flow has no nodes"


def test_more_than_one_trigger() -> None:
    doc = welcome()
    doc["nodes"].append({"id": "start2", "type": "trigger.api"})
    doc["nodes"].append({"id": "start3", "type": "trigger.api"})
    doc["edges"] += [{"from": "start2", "to": "hello"}, {"from": "start3", "to": "hello"}]
    result = validate(doc)
    many = [p for p in result.problems if p.code == "many_triggers"]
    assert [(p.node, p.field) for p in many] == [("start2", "type"), ("start3", "type")]
    assert "first is 'start'" in many[0].message
    # each extra trigger is reported once, not again as unreachable
    assert codes(result) == ["many_triggers", "many_triggers"]


def test_cycle_without_a_wait() -> None:
    doc = welcome()
    doc["edges"].append({"from": "tag", "to": "bought"})
    p = only(validate(doc), "loop_without_wait")
    assert p.node == "bought"
    assert "bought → tag" in p.message and "wait.delay" in p.fix


def test_self_loop_without_a_wait() -> None:
    doc = tiny({"id": "s", "type": "trigger.api"}, {"id": "c", "type": "logic.condition", "config": {"expr": "true"}},
               edges=[{"from": "s", "to": "c"}, {"from": "c", "port": "no", "to": "c"}])
    assert only(validate(doc), "loop_without_wait").node == "c"


def test_cycle_with_a_wait_is_fine() -> None:
    doc = welcome()
    doc["edges"].append({"from": "tag", "to": "wait1"})  # tag → wait1 → bought → tag
    doc["edges"][-2] = {"from": "wait_order", "port": "timeout", "to": "coupon"}  # coupon ↔ wait_order loop
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "done"]
    assert validate(doc).ok, validate(doc).problems


def test_self_loop_on_a_wait_is_fine() -> None:
    doc = tiny({"id": "s", "type": "trigger.api"},
               {"id": "w", "type": "wait.event", "config": {"event": "product.viewed", "timeout": "P1D"}},
               edges=[{"from": "s", "to": "w"}, {"from": "w", "port": "event", "to": "w"}])
    assert validate(doc).ok


def test_expression_that_does_not_compile() -> None:
    doc = welcome()
    node(doc, "bought")["config"]["expr"] = "customr.orders_count > 0"
    p = only(validate(doc), "bad_expression")
    assert (p.node, p.field) == ("bought", "config.expr")
    assert "unknown name 'customr'" in p.message
    assert p.fix == "fix the expression"


def test_expression_inside_a_list_names_its_path() -> None:
    doc = tiny({"id": "s", "type": "trigger.api"},
               {"id": "sw", "type": "logic.switch", "config": {"cases": [{"port": "a", "expr": "true"},
                                                                         {"port": "b", "expr": "customer.("}]}},
               edges=[{"from": "s", "to": "sw"}])
    p = only(validate(doc), "bad_expression")
    assert (p.node, p.field) == ("sw", "config.cases.1.expr")
    assert "syntax error" in p.message


def test_template_that_does_not_compile() -> None:
    doc = welcome()
    node(doc, "hello")["config"]["template"] = "你好 {{ customer.name }"
    p = only(validate(doc), "bad_template")
    assert (p.node, p.field) == ("hello", "config.template")
    assert p.message.startswith("template syntax error on line 1")


def test_settings_expressions_are_compiled() -> None:
    doc = welcome()
    doc["settings"]["exit_on"].append({"event": "refund.completed", "filter": "payload.amount > 0"})
    doc["settings"]["goal"]["filter"] = "event.payload.amount >"
    result = validate(doc)
    assert [(p.node, p.field, p.code) for p in result.problems] == [
        (None, "settings.exit_on.1.filter", "bad_expression"),
        (None, "settings.goal.filter", "bad_expression"),
    ]


def test_duration_that_does_not_parse() -> None:
    doc = welcome()
    node(doc, "wait1")["config"]["duration"] = "P1M"
    doc["settings"]["goal"]["within"] = "two weeks"
    result = validate(doc)
    assert [(p.node, p.field) for p in result.problems] == [(None, "settings.goal.within"),
                                                            ("wait1", "config.duration")]
    assert "not an ISO 8601 duration" in result.problems[0].message
    assert "P30D" in result.problems[1].message


def test_bad_timezone() -> None:
    doc = welcome()
    doc["settings"]["timezone"] = "Asia/Beijing"
    p = only(validate(doc), "invalid")
    assert (p.node, p.field) == (None, "settings.timezone")
    assert "Asia/Shanghai" in p.fix


def test_reentry_after_needs_a_duration() -> None:
    doc = welcome()
    doc["settings"]["entry"] = {"reentry": "after"}
    p = only(validate(doc), "invalid")
    assert (p.node, p.field) == (None, "settings.entry.reentry_after")
    doc["settings"]["entry"] = {"reentry": "after", "reentry_after": "P0D"}
    p = only(validate(doc), "invalid")
    assert "zero" in p.message
    doc["settings"]["entry"] = {"reentry": "after", "reentry_after": "P30D"}
    assert validate(doc).ok


def test_wrong_flow_kind_for_a_node() -> None:
    doc = tiny({"id": "s", "type": "trigger.date", "config": {"attribute": "birthday"}},
               {"id": "e", "type": "action.enroll", "config": {"flow": "other"}},
               edges=[{"from": "s", "to": "e"}], kind="ticket")
    result = validate(doc)
    assert [(p.node, p.field, p.code) for p in result.problems] == [("s", "type", "wrong_kind"),
                                                                    ("e", "type", "wrong_kind")]
    assert result.problems[0].message == "'trigger.date' cannot be used in a ticket flow"
    assert result.problems[0].fix == "use it in a journey flow"


def test_tag_is_allowed_in_ticket_flows_but_not_settlement() -> None:
    def flow(kind: str) -> dict[str, Any]:
        return tiny({"id": "s", "type": "trigger.api"}, {"id": "t", "type": "action.tag", "config": {"add": ["a"]}},
                    edges=[{"from": "s", "to": "t"}], kind=kind)

    assert validate(flow("ticket")).ok
    assert codes(validate(flow("settlement"))) == ["wrong_kind"]


def test_duplicate_node_id() -> None:
    doc = welcome()
    doc["nodes"].append({"id": "tag", "type": "logic.exit"})
    p = only(validate(doc), "duplicate_id")
    assert (p.node, p.field) == ("tag", "id")


def test_bad_envelope_fields() -> None:
    doc = welcome()
    doc["schema"] = "tideflow/flow@9"
    doc["owner"] = "me"
    del doc["name"]
    result = validate(doc)
    assert sorted((p.field, p.code) for p in result.problems) == [
        ("name", "missing_field"), ("owner", "unknown_field"), ("schema", "bad_value")]
    assert result.flow is None


def test_malformed_nodes_and_edges_are_reported_by_index() -> None:
    doc = welcome()
    doc["nodes"].append({"id": "bad id!", "type": "logic.exit"})
    doc["edges"].append({"from": "hello"})
    result = validate(doc)
    assert [(p.node, p.field) for p in result.problems] == [("bad id!", "nodes.9.id"), (None, "edges.8.to")]


def test_not_an_object() -> None:
    result = validate(["not", "a", "flow"])
    assert [p.message for p in result.problems] == ["a flow must be a JSON object"]


def test_nodes_and_edges_must_be_lists() -> None:
    result = validate({"id": "x", "name": "x", "nodes": {"a": 1}, "edges": "none"})
    assert {(p.field, p.message) for p in result.problems} >= {("nodes", "must be a list"), ("edges", "must be a list")}


# -- everything at once ---------------------------------------------------------------------------
def test_all_problems_are_reported_at_once() -> None:
    doc = welcome()
    doc["settings"]["timezone"] = "Nowhere/Land"
    node(doc, "hello")["type"] = "action.send_mesage"
    node(doc, "wait1")["config"]["duration"] = "P1M"
    node(doc, "bought")["config"]["expr"] = "customer.orders_count >"
    node(doc, "coupon")["config"]["template"] = "{{ coupon_code }}"
    doc["nodes"].append({"id": "start2", "type": "trigger.api"})
    doc["nodes"].append({"id": "orphan", "type": "logic.exit"})
    doc["edges"] += [
        {"from": "start2", "to": "tag"},
        {"from": "ghost", "to": "tag"},
        {"from": "bought", "port": "maybe", "to": "tag"},
        {"from": "wait_order", "port": "event", "to": "done"},
        {"from": "tag", "to": "start"},
    ]
    result = validate(doc)
    assert not result.ok
    assert [(p.node, p.field, p.code) for p in result.problems] == [
        (None, "settings.timezone", "invalid"),
        ("hello", "type", "unknown_type"),
        ("wait1", "config.duration", "bad_value"),
        ("bought", "config.expr", "bad_expression"),
        ("coupon", "config.template", "bad_template"),
        (None, "edges.9", "dangling_edge"),
        ("bought", "edges.10", "bad_port"),
        ("wait_order", "edges.11", "duplicate_edge"),
        ("start", "edges.12", "edge_into_trigger"),
        ("start2", "type", "many_triggers"),
        ("orphan", None, "unreachable"),
    ]
    assert all(isinstance(p, Problem) and p.fix for p in result.problems)
    assert {"node", "field", "message", "fix", "code"} == set(result.problems[0].as_dict())


def test_validation_does_not_modify_the_document() -> None:
    doc = welcome()
    before = copy.deepcopy(doc)
    validate(doc)
    assert doc == before


def test_check_expression_helper() -> None:
    assert check_expression("customer.vip_level > 2", "expression") is None
    assert check_expression("{{ customer.name }}", "template") is None
    assert "unknown name 'x'" in (check_expression("x > 1", "expression") or "")
    assert "syntax error" in (check_expression("{% if %}", "template") or "")


# -- known gaps (see the report) ---------------------------------------------------------------------
def test_optional_filter_expressions_are_compiled() -> None:
    doc = welcome()
    node(doc, "start")["config"]["filter"] = "customer.("
    node(doc, "wait_order")["config"]["filter"] = "payload.amount > 0"
    result = validate(doc)
    assert [(p.node, p.field, p.code) for p in result.problems] == [
        ("start", "config.filter", "bad_expression"), ("wait_order", "config.filter", "bad_expression")]


def test_a_trigger_with_bad_config_is_still_the_trigger() -> None:
    doc = welcome()
    node(doc, "start")["config"] = {}
    assert codes(validate(doc)) == ["missing_field"]


def test_unknown_event_types_are_problems() -> None:
    doc = welcome()
    node(doc, "start")["config"]["event"] = "wecom.contact_add"
    assert codes(validate(doc)) == ["unknown_event"]
