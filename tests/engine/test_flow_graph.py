"""engine.flow_graph, the pure graph functions the editor uses: the version diff, the auto-layout and
the funnel's main path."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

from engine.flow_graph import auto_layout, flow_diff, main_path

WELCOME: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "flows" / "welcome-new-contact.json").read_text(encoding="utf-8"))


def _flow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **envelope: Any) -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": "f", "name": "F", "kind": "journey", **envelope,
            "nodes": nodes, "edges": edges}


def test_diff_of_a_document_with_itself_is_empty() -> None:
    diff = flow_diff(WELCOME, copy.deepcopy(WELCOME))
    assert diff.empty and diff.as_dict()["nodes_changed"] == {}


def test_diff_names_nodes_and_edges_added_removed_and_changed() -> None:
    a = _flow([{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}, "ui": {"x": 0, "y": 0}},
               {"id": "hello", "type": "action.send_message", "name": "问候", "config": {"template": "hi"}},
               {"id": "old", "type": "logic.exit"}],
              [{"from": "start", "to": "hello"}, {"from": "hello", "port": "out", "to": "old"}],
              settings={"timezone": "Asia/Shanghai", "goal": {"event": "order.paid", "within": "P7D"}})
    b = _flow([{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}, "ui": {"x": 50, "y": 0}},
               {"id": "hello", "type": "action.send_message", "name": "欢迎", "config": {"template": "你好",
                                                                                           "channel": "wecom"}},
               {"id": "done", "type": "logic.goal"}],
              [{"from": "start", "port": "out", "to": "hello"}, {"from": "hello", "to": "done"}],
              settings={"timezone": "Asia/Shanghai", "goal": {"event": "order.paid", "within": "P14D"}})
    diff = flow_diff(a, b)
    assert [n["id"] for n in diff.nodes_added] == ["done"]
    assert [n["id"] for n in diff.nodes_removed] == ["old"]
    assert len(diff.nodes_changed) == 1 and diff.nodes_changed[0].id == "hello"
    assert diff.nodes_changed[0].fields == [("name", "问候", "欢迎"), ("config.channel", None, "wecom"),
                                            ("config.template", "hi", "你好")]
    assert diff.nodes_moved == ["start"]  # moved only: reported apart from real changes
    assert diff.edges_added == [("hello", "out", "done")]  # "port": "out" and no port are the same edge
    assert diff.edges_removed == [("hello", "out", "old")]
    assert diff.settings_changed == [("settings.goal.within", "P7D", "P14D")]
    assert not diff.empty


def test_diff_reports_changes_inside_lists_of_objects() -> None:
    a = _flow([{"id": "s", "type": "logic.switch", "config": {"cases": [{"port": "a", "expr": "true"}]}}], [])
    b = _flow([{"id": "s", "type": "logic.switch", "config": {"cases": [{"port": "a", "expr": "false"},
                                                                         {"port": "b", "expr": "true"}]}}], [])
    fields = flow_diff(a, b).nodes_changed[0].fields
    assert ("config.cases.0.expr", "true", "false") in fields and ("config.cases.1.port", None, "b") in fields


def test_auto_layout_puts_nodes_in_columns_by_depth_from_the_trigger() -> None:
    positions = auto_layout(WELCOME)
    assert set(positions) == {n["id"] for n in WELCOME["nodes"]}
    x = {n: p["x"] for n, p in positions.items()}
    y = {n: p["y"] for n, p in positions.items()}
    assert x["start"] < x["hello"] < x["wait1"] < x["bought"]
    for edge in WELCOME["edges"]:  # every edge points right: a layered left → right layout
        assert x[edge["to"]] > x[edge["from"]]
    assert y["tag_trial"] < y[next(e["to"] for e in WELCOME["edges"] if e.get("port") == "no")]  # yes above no
    assert len({(p["x"], p["y"]) for p in positions.values()}) == len(positions)  # no two on one spot


def test_auto_layout_survives_loops_and_places_unreachable_nodes_below() -> None:
    doc = _flow([{"id": "t", "type": "trigger.event"}, {"id": "w", "type": "wait.delay"},
                 {"id": "c", "type": "logic.condition"}, {"id": "lost", "type": "action.tag"}],
                [{"from": "t", "to": "w"}, {"from": "w", "to": "c"}, {"from": "c", "port": "yes", "to": "w"}])
    positions = auto_layout(doc)
    assert positions["t"]["x"] < positions["w"]["x"] < positions["c"]["x"]
    assert positions["lost"]["y"] > max(p["y"] for n, p in positions.items() if n != "lost")
    assert auto_layout(_flow([], [])) == {}


def test_main_path_runs_from_the_trigger_to_the_goal() -> None:
    path = main_path(WELCOME)
    assert path[0] == "start" and path[-1] == "converted"
    edges = {(e["from"], e["to"]) for e in WELCOME["edges"]}
    assert all((a, b) in edges for a, b in itertools.pairwise(path))  # along edges, shortest
    assert len(path) == len(set(path))
    no_goal = _flow([{"id": "t", "type": "trigger.event"}, {"id": "c", "type": "logic.condition"},
                     {"id": "y", "type": "action.tag"}, {"id": "n", "type": "logic.exit"}],
                    [{"from": "t", "to": "c"}, {"from": "c", "port": "no", "to": "n"},
                     {"from": "c", "port": "yes", "to": "y"}])
    assert main_path(no_goal) == ["t", "c", "y"]  # no goal: the first port (yes before no)
    assert main_path(_flow([], [])) == []

