"""The shape of a ``tideflow/flow@1`` document (engine.flow)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from engine.flow import SCHEMA, Edge, Flow, FlowSettings, Node


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "tideflow/flow@1",
        "id": "welcome-new-contact",
        "name": "新客欢迎旅程",
        "nodes": [
            {"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"},
             "ui": {"x": 80, "y": 120}},
            {"id": "hello", "type": "action.send_message", "config": {"template": "你好"}},
        ],
        "edges": [{"from": "start", "to": "hello"}],
    }
    doc.update(overrides)
    return doc


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in exc.value.errors()]


def test_minimal_document_gets_defaults() -> None:
    flow = Flow.model_validate(_doc())
    assert flow.schema_ == SCHEMA == "tideflow/flow@1"
    assert flow.kind == "journey"
    assert flow.description is None
    settings = flow.settings
    assert settings.timezone == "Asia/Shanghai"
    assert settings.entry.reentry == "never" and settings.entry.reentry_after is None
    assert settings.exit_on == [] and settings.goal is None and settings.quiet_hours is None
    assert settings.frequency_capped is True


def test_edges_read_from_and_to_with_default_port() -> None:
    edge = Flow.model_validate(_doc()).edges[0]
    assert (edge.source, edge.port, edge.target) == ("start", "out", "hello")
    assert Edge.model_validate({"from": "a", "port": "yes", "to": "b"}).port == "yes"
    assert Edge(source="a", target="b").dump() == {"from": "a", "port": "out", "to": "b"}


def test_full_settings_parse() -> None:
    settings = FlowSettings.model_validate({
        "timezone": "Asia/Shanghai",
        "entry": {"reentry": "after", "reentry_after": "P30D"},
        "exit_on": [{"event": "customer.unsubscribed"}, {"event": "order.paid", "filter": "event.payload.amount > 0"}],
        "goal": {"event": "order.paid", "within": "P14D"},
        "quiet_hours": {"start": "21:00", "end": "09:00"},
        "frequency_capped": False,
    })
    assert settings.entry.reentry_after == "P30D"
    assert [m.event for m in settings.exit_on] == ["customer.unsubscribed", "order.paid"]
    assert settings.exit_on[1].filter == "event.payload.amount > 0"
    assert settings.goal is not None and settings.goal.within == "P14D"
    assert settings.quiet_hours is not None and settings.quiet_hours.start == "21:00"


def test_dump_is_canonical_json_with_from_to_and_schema() -> None:
    data = Flow.model_validate(_doc(description="欢迎新好友")).dump()
    assert data["schema"] == "tideflow/flow@1"
    assert "schema_" not in data
    assert data["edges"] == [{"from": "start", "port": "out", "to": "hello"}]
    assert data["description"] == "欢迎新好友"
    assert data["nodes"][0]["ui"] == {"x": 80, "y": 120}
    assert "name" not in data["nodes"][0]  # None values are left out
    again = Flow.model_validate(json.loads(json.dumps(data, ensure_ascii=False)))
    assert again.dump() == data


def test_ui_keeps_extra_canvas_keys_and_defaults_to_origin() -> None:
    node = Node.model_validate({"id": "n1", "type": "wait.delay", "ui": {"x": 5, "collapsed": True}})
    assert node.ui is not None and (node.ui.x, node.ui.y) == (5, 0)
    assert node.model_dump()["ui"]["collapsed"] is True


@pytest.mark.parametrize(
    ("overrides", "where", "kind"),
    [
        ({"schema": "tideflow/flow@2"}, "schema", "literal_error"),
        ({"id": "has space"}, "id", "string_pattern_mismatch"),
        ({"id": "-leading-dash"}, "id", "string_pattern_mismatch"),
        ({"id": "x" * 81}, "id", "string_pattern_mismatch"),
        ({"name": ""}, "name", "string_too_short"),
        ({"name": "名" * 201}, "name", "string_too_long"),
        ({"kind": "campaign"}, "kind", "literal_error"),
        ({"colour": "blue"}, "colour", "extra_forbidden"),
        ({"settings": {"entry": {"reentry": "sometimes"}}}, "settings.entry.reentry", "literal_error"),
        ({"settings": {"quiet_hours": {"start": "25:00", "end": "09:00"}}}, "settings.quiet_hours.start",
         "string_pattern_mismatch"),
        ({"settings": {"exit_on": [{"event": ""}]}}, "settings.exit_on.0.event", "string_too_short"),
        ({"settings": {"tz": "UTC"}}, "settings.tz", "extra_forbidden"),
    ],
)
def test_bad_envelope_is_rejected_with_location(overrides: dict[str, Any], where: str, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Flow.model_validate(_doc(**overrides))
    assert (where, kind) in _errors(exc)


def test_missing_id_and_name_are_reported() -> None:
    doc = _doc()
    del doc["id"], doc["name"]
    with pytest.raises(ValidationError) as exc:
        Flow.model_validate(doc)
    assert {("id", "missing"), ("name", "missing")} <= set(_errors(exc))


@pytest.mark.parametrize(
    ("node", "where", "kind"),
    [
        ({"id": "a b", "type": "wait.delay"}, "id", "string_pattern_mismatch"),
        ({"id": "a", "type": ""}, "type", "string_too_short"),
        ({"id": "a", "type": "wait.delay", "port": "out"}, "port", "extra_forbidden"),
        ({"type": "wait.delay"}, "id", "missing"),
    ],
)
def test_bad_node_is_rejected(node: dict[str, Any], where: str, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Node.model_validate(node)
    assert (where, kind) in _errors(exc)


def test_bad_edge_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Edge.model_validate({"from": "a", "to": "b", "label": "x"})
    assert ("label", "extra_forbidden") in _errors(exc)
    with pytest.raises(ValidationError) as exc:
        Edge.model_validate({"from": "a"})
    assert ("to", "missing") in _errors(exc)


def test_kinds() -> None:
    for kind in ("journey", "ticket", "settlement"):
        assert Flow.model_validate(_doc(kind=kind)).kind == kind
