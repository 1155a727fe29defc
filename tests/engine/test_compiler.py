"""The compiler: valid flow → content-hashed program with port → next-node tables (engine.compiler)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine.compiler import COMPILED_SCHEMA, FlowInvalid, canonical_json, compile_flow, has_waits
from engine.validate import validate


def welcome() -> dict[str, Any]:
    return {
        "schema": "tideflow/flow@1",
        "id": "welcome",
        "name": "新客欢迎",
        "description": "添加企微好友后的欢迎旅程",
        "settings": {"exit_on": [{"event": "customer.unsubscribed"}],
                     "goal": {"event": "order.paid", "within": "P14D"}},
        "nodes": [
            {"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"},
             "ui": {"x": 80, "y": 120}},
            {"id": "hello", "type": "action.send_message", "name": "欢迎语",
             "config": {"channel": "wecom", "template": "你好 {{ customer.name }}"}, "ui": {"x": 320, "y": 120}},
            {"id": "wait1", "type": "wait.delay", "config": {"duration": "P1D"}, "ui": {"x": 560, "y": 120}},
            {"id": "bought", "type": "logic.condition", "config": {"expr": "customer.orders_count > 0"},
             "ui": {"x": 800, "y": 120}},
            {"id": "tag", "type": "action.tag", "config": {"add": ["尝鲜客"]}, "ui": {"x": 1040, "y": 40}},
            {"id": "coupon", "type": "action.send_message", "config": {"template": "送您一张券"},
             "ui": {"x": 1040, "y": 200}},
            {"id": "done", "type": "logic.exit", "ui": {"x": 1280, "y": 200}},
        ],
        "edges": [
            {"from": "start", "to": "hello"},
            {"from": "hello", "to": "wait1"},
            {"from": "wait1", "to": "bought"},
            {"from": "bought", "port": "yes", "to": "tag"},
            {"from": "bought", "port": "no", "to": "coupon"},
            {"from": "coupon", "to": "done"},
        ],
    }


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


# -- the compiled program ------------------------------------------------------------------------
def test_compiled_form() -> None:
    compiled = compile_flow(welcome())
    assert compiled["schema"] == COMPILED_SCHEMA == "tideflow/compiled@1"
    assert (compiled["flow_id"], compiled["name"], compiled["version"], compiled["kind"]) == (
        "welcome", "新客欢迎", 0, "journey")
    assert compiled["trigger"] == "start"
    assert len(compiled["hash"]) == 64
    assert compiled["settings"]["goal"] == {"event": "order.paid", "filter": None, "within": "P14D"}
    assert set(compiled["nodes"]) == {"start", "hello", "wait1", "bought", "tag", "coupon", "done"}
    json.dumps(compiled)  # plain JSON: it travels in the workflow input


def test_next_tables() -> None:
    nodes = compile_flow(welcome())["nodes"]
    assert {node_id: n["next"] for node_id, n in nodes.items()} == {
        "start": {"out": "hello"},
        "hello": {"out": "wait1"},
        "wait1": {"out": "bought"},
        "bought": {"yes": "tag", "no": "coupon"},
        "tag": {},
        "coupon": {"out": "done"},
        "done": {},
    }


def test_nodes_carry_type_category_and_config_with_defaults() -> None:
    nodes = compile_flow(welcome())["nodes"]
    assert nodes["bought"]["type"] == "logic.condition" and nodes["bought"]["category"] == "logic"
    assert nodes["wait1"]["category"] == "wait"
    assert nodes["start"]["category"] == "trigger"
    assert nodes["done"]["category"] == "end"
    assert nodes["hello"]["category"] == "action"
    assert nodes["coupon"]["config"] == {"channel": "dry-run", "template": "送您一张券", "category": "promotional",
                                         "fallback_channel": None, "attachments": []}
    assert nodes["tag"]["config"] == {"add": ["尝鲜客"], "remove": []}
    assert "ui" not in nodes["hello"] and "name" not in nodes["hello"]


def test_has_waits() -> None:
    assert has_waits(compile_flow(welcome()))
    doc = welcome()
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "wait1"]
    doc["edges"][1:3] = [{"from": "hello", "to": "bought"}]
    assert not has_waits(compile_flow(doc))


# -- the content hash ----------------------------------------------------------------------------
def test_hash_is_stable_across_key_order() -> None:
    assert compile_flow(_reversed_keys(welcome()))["hash"] == compile_flow(welcome())["hash"]


def test_hash_is_stable_across_node_and_edge_order() -> None:
    doc = welcome()
    doc["nodes"].reverse()
    doc["edges"].reverse()
    assert compile_flow(doc)["hash"] == compile_flow(welcome())["hash"]


def test_hash_ignores_ui_names_and_description() -> None:
    doc = welcome()
    for i, n in enumerate(doc["nodes"]):
        n["ui"] = {"x": 1000 - i * 37, "y": i * 11, "collapsed": True}
        n["name"] = f"步骤 {i}"
    doc["description"] = "another description"
    doc["name"] = "renamed"
    del doc["nodes"][0]["ui"]
    assert compile_flow(doc)["hash"] == compile_flow(welcome())["hash"]


def test_hash_ignores_spelling_out_defaults() -> None:
    doc = welcome()
    doc["nodes"][5]["config"] = {"channel": "dry-run", "template": "送您一张券", "category": "promotional"}
    doc["edges"][0]["port"] = "out"
    doc["settings"]["timezone"] = "Asia/Shanghai"
    assert compile_flow(doc)["hash"] == compile_flow(welcome())["hash"]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["nodes"][2]["config"].update(duration="P2D"),
        lambda d: d["nodes"][1]["config"].update(template="您好 {{ customer.name }}"),
        lambda d: d["nodes"][3]["config"].update(expr="customer.orders_count > 1"),
        lambda d: d["nodes"][4]["config"].update(add=["复购客"]),
        lambda d: d["settings"].update(timezone="Asia/Tokyo"),
        lambda d: d["settings"]["goal"].update(within="P7D"),
        lambda d: d["edges"][3].update(to="coupon") or d["edges"][4].update(to="tag"),
        lambda d: d.update(kind="ticket"),
    ],
)
def test_hash_changes_when_behaviour_changes(change: Any) -> None:
    doc = welcome()
    change(doc)
    assert compile_flow(doc)["hash"] != compile_flow(welcome())["hash"]


def test_compiling_does_not_modify_the_document() -> None:
    doc = welcome()
    before = copy.deepcopy(doc)
    compile_flow(doc)
    assert doc == before


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": ["欢迎", {"d": 2, "c": 3}]}) == '{"a":["欢迎",{"c":3,"d":2}],"b":1}'


# -- invalid flows -------------------------------------------------------------------------------
def test_flow_invalid_lists_every_problem() -> None:
    doc = welcome()
    doc["nodes"][2]["config"]["duration"] = "soon"
    doc["nodes"][3]["config"]["expr"] = "custmer.orders_count > 0"
    doc["edges"].append({"from": "ghost", "to": "hello"})
    with pytest.raises(FlowInvalid) as exc:
        compile_flow(doc)
    err = exc.value
    assert isinstance(err, ValueError)
    assert [(p.node, p.code) for p in err.problems] == [("wait1", "bad_value"), ("bought", "bad_expression"),
                                                        (None, "dangling_edge")]
    assert str(err).startswith("3 problem(s); first: node 'wait1', config.duration:")
    assert err.problems == validate(doc).problems


def test_flow_invalid_for_a_problem_without_a_node() -> None:
    doc = welcome()
    doc["settings"]["timezone"] = "Mars/Olympus"
    with pytest.raises(FlowInvalid, match=r"1 problem\(s\); first: the flow, settings.timezone:"):
        compile_flow(doc)


def test_garbage_is_flow_invalid() -> None:
    with pytest.raises(FlowInvalid):
        compile_flow("not a flow")
    with pytest.raises(FlowInvalid):
        compile_flow({"id": "x"})


# -- a big generated flow ------------------------------------------------------------------------
def generated(blocks: int = 49) -> dict[str, Any]:
    """trigger + ``blocks`` × (send → wait → condition → tag) + split → goal / exit; 4·blocks + 4 nodes."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"},
                                    "ui": {"x": 0, "y": 0}}]
    edges: list[dict[str, str]] = []
    previous = "start"
    for i in range(blocks):
        x = 200 * (i + 1)
        nodes += [
            {"id": f"send{i}", "type": "action.send_message",
             "config": {"template": f"第 {i} 条 {{{{ customer.name }}}}"}, "ui": {"x": x, "y": 0}},
            {"id": f"wait{i}", "type": "wait.event",
             "config": {"event": "order.paid", "timeout": f"PT{i + 1}H"}, "ui": {"x": x, "y": 100}},
            {"id": f"cond{i}", "type": "logic.condition", "config": {"expr": f"customer.orders_count > {i}"},
             "ui": {"x": x, "y": 200}},
            {"id": f"tag{i}", "type": "action.tag", "config": {"add": [f"level-{i}"]}, "ui": {"x": x, "y": 300}},
        ]
        edges += [
            {"from": previous, "to": f"send{i}"},
            {"from": f"send{i}", "to": f"wait{i}"},
            {"from": f"wait{i}", "port": "event", "to": f"cond{i}"},
            {"from": f"wait{i}", "port": "timeout", "to": f"cond{i}"},
            {"from": f"cond{i}", "port": "yes", "to": f"tag{i}"},
        ]
        if i:  # loop back: no → the previous block's wait (a loop with a wait in it)
            edges.append({"from": f"cond{i}", "port": "no", "to": f"wait{i - 1}"})
        previous = f"tag{i}"
    nodes += [
        {"id": "ab", "type": "logic.split", "config": {"branches": [{"port": "A", "weight": 1},
                                                                    {"port": "B", "weight": 1}]}},
        {"id": "won", "type": "logic.goal"},
        {"id": "bye", "type": "logic.exit"},
    ]
    edges += [{"from": previous, "to": "ab"}, {"from": "ab", "port": "A", "to": "won"},
              {"from": "ab", "port": "B", "to": "bye"}]
    return {"schema": "tideflow/flow@1", "id": "big", "name": "大流程", "nodes": nodes, "edges": edges}


def test_a_200_node_flow_validates_and_compiles() -> None:
    doc = generated()
    assert len(doc["nodes"]) == 200
    result = validate(doc)
    assert result.ok, result.problems[:5]
    compiled = compile_flow(doc)
    nodes = compiled["nodes"]
    assert len(nodes) == 200
    assert nodes["start"]["next"] == {"out": "send0"}
    assert nodes["wait17"]["next"] == {"event": "cond17", "timeout": "cond17"}
    assert nodes["wait17"]["config"]["timeout"] == "PT18H"
    assert nodes["cond17"]["next"] == {"yes": "tag17", "no": "wait16"}
    assert nodes["cond0"]["next"] == {"yes": "tag0"}
    assert nodes["tag48"]["next"] == {"out": "ab"}
    assert nodes["ab"]["next"] == {"A": "won", "B": "bye"}
    assert sum(len(n["next"]) for n in nodes.values()) == len(doc["edges"])
    assert compile_flow(_reversed_keys(doc))["hash"] == compiled["hash"]


def test_a_200_node_flow_with_one_mistake_reports_just_that() -> None:
    doc = generated()
    doc["edges"].append({"from": "cond30", "port": "no", "to": "send30"})  # cond30.no already leads to wait29
    result = validate(doc)
    assert [(p.node, p.code) for p in result.problems] == [("cond30", "duplicate_edge")]
    doc = generated()
    doc["nodes"][-1] = {"id": "bye", "type": "logic.condition", "config": {"expr": "customer.vip_level > 1"}}
    looped = copy.deepcopy(doc)
    doc["edges"].append({"from": "bye", "port": "yes", "to": "cond20"})  # back through wait21 … wait48: fine
    assert validate(doc).ok
    looped["edges"].append({"from": "bye", "port": "yes", "to": "ab"})  # ab → bye → ab: spins
    assert [(p.node, p.code) for p in validate(looped).problems] == [("ab", "loop_without_wait")]

def test_a_long_loop_without_a_wait_is_found_without_recursion_limits() -> None:
    n = 3000
    nodes = [{"id": "start", "type": "trigger.api"}] + [
        {"id": f"c{i}", "type": "logic.condition", "config": {"expr": "true"}} for i in range(n)]
    edges = [{"from": "start", "to": "c0"}] + [
        {"from": f"c{i}", "port": "yes", "to": f"c{(i + 1) % n}"} for i in range(n)]
    problems = validate({"schema": "tideflow/flow@1", "id": "loop", "name": "L", "nodes": nodes,
                         "edges": edges}).problems
    assert [(p.node, p.code) for p in problems] == [("c0", "loop_without_wait")]
