"""The logic.decision_table property form: the table is one JSON control that the grid editor
(static/decisions/decision_table.js) works on, with DMN import/export and a test button; it survives
render → submit unchanged, and the editor page loads the grid's script."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from decisions.dmn_xml import load_decision_table
from designer.forms import build_form, parse_form, widget_of
from designer.i18n import language
from engine.nodes.logic_decision_table import DecisionTableNode
from tests.designer.editor_kit import Session, editor_app, login, read_form

__all__ = ["editor_app", "login"]  # fixtures used by this module
DMN = Path(__file__).resolve().parents[1] / "decisions" / "data" / "refund_routing.dmn"
TABLE = load_decision_table(DMN.read_bytes(), "refund_routing").model_dump(mode="json")
CONFIG: dict[str, Any] = {"table": TABLE, "port_output": "queue", "allow_gaps": True}


def _form(session: Session, config: dict[str, Any]) -> str:
    r = session.get("/flows/welcome-new-contact/nodes/route/form", params={
        "type": "logic.decision_table", "config": json.dumps(config, ensure_ascii=False), "name": "路由"})
    assert r.status_code == 200, r.text
    return r.text


def test_the_table_is_one_json_control_the_grid_works_on() -> None:
    schema = DecisionTableNode.schema()
    assert widget_of(schema["properties"]["table"], schema) == "decision_table"
    with language("en"):
        [table, port_output, default_port, result_variable, allow_gaps] = build_form(schema, CONFIG)
    assert table.widget == "decision_table" and json.loads(table.value) == TABLE and table.required
    assert table.label == "Decision table" and port_output.label == "Output that picks the port"
    assert (default_port.value, allow_gaps.value, result_variable.value) == ("default", True, "")
    parsed = parse_form(schema, {"table": table.value, "port_output": "queue", "default_port": "default",
                                 "allow_gaps": "on"}, CONFIG, model=DecisionTableNode.Config)
    assert parsed.config == CONFIG and parsed.errors == {}
    broken = parse_form(schema, {"table": '{"name": ', "default_port": "default"}, CONFIG,
                        model=DecisionTableNode.Config)
    assert broken.errors["table"].startswith("不是有效的 JSON") and broken.config["table"] == TABLE


def test_the_form_renders_the_grid_tools_round_trips_and_reports_errors(login: Callable[..., Session]) -> None:
    ops = login("ops")
    html = _form(ops, CONFIG)
    assert 'data-dmn data-source="f-table"' in html and "data-dmn-import" in html and "data-dmn-export" in html
    assert "导入 DMN…" in html and "测试此决策表" in html and "决策表" in html
    text = json.loads(html.split("data-text='", 1)[1].split("'", 1)[0])
    assert text["dmn.hit_policy"] == "命中策略" and all(key.startswith("dmn.") for key in text)
    assert all(f"<code>{port}</code>" in html  # the ports the panel lists
               for port in ("refund_risk", "refund_senior", "refund_vip", "refund_standard", "default"))
    fields = read_form(html).fields
    assert [name for name, _ in fields if not name.startswith("_")] == [
        "table", "port_output", "default_port", "result_variable", "allow_gaps"]  # the grid's inputs have no name
    r = ops.post("/flows/welcome-new-contact/nodes/route/config", data=fields)
    answer = r.json()
    assert answer["ok"] is True, answer["errors"]
    assert answer["config"] == CONFIG
    assert answer["ports"] == ["refund_risk", "refund_senior", "refund_vip", "refund_standard", "default"]
    english = login("ops", "en").get("/flows/welcome-new-contact/nodes/route/form", params={
        "type": "logic.decision_table", "config": json.dumps(CONFIG), "lang": "en"}).text
    assert "Import DMN…" in english and "Test this table" in english

    # a table the model refuses is an error on the table field
    bad = {**TABLE, "hit_policy": "FIRST", "aggregation": "SUM"}
    fields = [(name, json.dumps(bad) if name == "table" else value) for name, value in fields]
    answer = ops.post("/flows/welcome-new-contact/nodes/route/config", data=fields).json()
    assert answer["ok"] is False and answer["ports"] is None
    assert "聚合方式 SUM 需要命中策略 COLLECT" in answer["errors"]["table"]

    # the editor page loads the grid's script and style
    html = ops.get("/flows/welcome-new-contact/edit").text
    assert '<script type="module" src="/static/decisions/decision_table.js">' in html
    assert "/static/decisions/decision_table.css" in html
    script = ops.get("/static/decisions/decision_table.js")
    assert script.status_code == 200 and "/api/decisions/evaluate" in script.text
