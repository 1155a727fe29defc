"""Property forms generated from node config JSON Schemas: every built-in node type renders, every
config of the shipped flows survives render → submit → parse unchanged, each schema shape gets its
control, and submitting answers the parsed config or an error per field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from designer import i18n
from designer.forms import Pickers, build_form, parse_form, widget_of
from engine.db import models
from engine.db.session import transaction
from engine.flow_graph import ports_of
from engine.registry import default_registry
from tests.designer.editor_kit import Session, editor_app, login, read_form

__all__ = ["editor_app", "login"]  # fixtures used by this module
FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _form(session: Session, node_type: str, config: Any = None, name: str = "") -> str:
    r = session.get("/flows/welcome-new-contact/nodes/n1/form",
                    params={"type": node_type, "config": json.dumps(config or {}, ensure_ascii=False), "name": name})
    assert r.status_code == 200, r.text
    return r.text


def _submit(session: Session, node_type: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    r = session.post("/flows/welcome-new-contact/nodes/n1/config", data=fields)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _shipped_nodes() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path in sorted(FLOWS.glob("*.json")):
        for node in json.loads(path.read_text(encoding="utf-8"))["nodes"]:
            out.append((f"{path.stem}:{node['id']}", node["type"], node.get("config") or {}))
    return out


EXTRA_CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("logic.switch", {"cases": [{"port": "svip", "expr": "customer.vip_level >= 3"}, {"port": "vip", "expr": "true"}]}),
    ("logic.split", {"branches": [{"port": "A", "weight": 45}, {"port": "B", "weight": 45},
                                  {"port": "control", "weight": 10}]}),
    ("action.webhook", {"url": "https://crm.example.com/hook/{{ customer.id }}", "method": "PUT",
                        "headers": {"X-Shop": "{{ customer.shop }}", "X-Env": "test"}, "timeout_seconds": 5,
                        "body": "{\"id\": {{ customer.id | tojson }}}"}),
    ("action.update_profile", {"set": {"source": "{{ event.payload.channel }}", "vip_level": 2,
                                       "amount": {"value": "{{ event.payload.amount_fen }}", "type": "int"}},
                               "increment": {"coupons_received": 1}, "unset": ["trial"]}),
    ("action.tag", {"add": ["尝鲜客", "复购客"], "remove": ["沉默"]}),
    ("trigger.date", {"attribute": "birthday", "offset_days": -3, "at": "09:30", "yearly": False}),
    ("wait.until", {"time": "20:00", "weekdays": [6, 7], "date_attribute": "birthday"}),
    ("trigger.schedule", {"every": "P1D"}),
    ("action.send_message", {"channel": "sms", "template": "验证码 {{ vars.code }}", "category": "transactional",
                             "attachments": ["https://example.com/a.png"]}),
    ("action.enroll", {"flow": "birthday-care"}),
]


def test_every_node_type_renders_its_form_from_its_schema(login: Callable[..., Session]) -> None:
    admin = login("admin")
    registry = default_registry()
    assert {"trigger.event", "logic.switch", "action.send_message"} <= set(registry.types)
    for node_type in registry.types.values():
        html = _form(admin, node_type.type)
        assert f"<code>{node_type.type}</code>" in html
        assert node_type.label["zh-CN"] in html
        controls = read_form(html).controls
        for prop in node_type.schema().get("properties", {}):
            assert any(name == prop or name.startswith(prop + ".") for name in controls) or \
                f'data-field="{prop}"' in html, f"{node_type.type}: no control for {prop}"


def test_every_shipped_config_survives_render_and_submit_unchanged(login: Callable[..., Session]) -> None:
    """Each node config of the shipped flows (and of the shapes they lack) rendered as a form and
    submitted as a browser would comes back as exactly the same config."""
    admin = login("admin")
    cases = [*_shipped_nodes(), *((f"extra:{t}", t, c) for t, c in EXTRA_CONFIGS)]
    assert len(cases) > 40
    for where, node_type, config in cases:
        fields = read_form(_form(admin, node_type, config, "节点")).fields
        assert ("_name", "节点") in fields and ("_type", node_type) in fields, where
        answer = _submit(admin, node_type, fields)
        assert answer["config"] == config, where
        assert answer["ok"] is True, (where, answer["errors"])
        assert answer["name"] == "节点", where


def test_each_schema_shape_gets_its_control(login: Callable[..., Session]) -> None:
    admin = login("admin")
    send = _form(admin, "action.send_message", {"template": "hi"})
    assert 'hx-post="/flows/template/preview"' in send and "<textarea" in send  # template: live preview
    controls = read_form(send).controls
    assert controls["channel"]["tag"] == "select" and "wecom" in send  # enum → select
    assert controls["attachments"]["tag"] == "input"  # list of strings → comma-separated tags
    assert "多个值用逗号分隔" in send
    condition = _form(admin, "logic.condition")
    assert 'hx-post="/flows/expression/check"' in condition and '"_kind": "expression"' in condition
    delay = _form(admin, "wait.delay")
    assert '"_kind": "duration"' in delay and ">天</option>" in delay  # a number and a unit
    assert read_form(delay).fields[-2:] == [("duration.amount", "1"), ("duration.unit", "days")]  # the default P1D
    switch = _form(admin, "logic.switch", {"cases": [{"port": "vip", "expr": "true"}]})
    assert "data-add-row" in switch and 'name="cases.__i__.expr"' in switch  # rows, with a blank row template
    assert 'name="cases.0.port"' in switch
    date = read_form(_form(admin, "trigger.date")).controls
    assert date["yearly"]["type"] == "checkbox" and date["offset_days"]["type"] == "number"
    assert date["offset_days"]["min"] == "-365" and date["offset_days"]["max"] == "365"
    webhook = _form(admin, "action.webhook", {"url": "https://x", "headers": {"A": "b"}})
    assert 'name="headers.0.key"' in webhook and 'name="headers.0.value"' in webhook  # dict → key/value rows
    profile = read_form(_form(admin, "action.update_profile", {"set": {"a": 1}})).controls
    assert profile["set"]["tag"] == "textarea"  # values of several types → JSON
    trigger = _form(admin, "trigger.event")
    assert 'list="tf-event-types"' in trigger and 'value="wecom.contact_added"' in trigger  # event picker
    assert "事件类型" in trigger


def test_coupon_campaigns_are_offered_as_a_select(login: Callable[..., Session], db_url: str) -> None:
    admin = login("admin")
    with transaction(db_url) as db:
        db.execute(delete(models.CouponCampaign))
    assert read_form(_form(admin, "action.issue_coupon")).controls["campaign"]["tag"] == "input"  # none: free text
    with transaction(db_url) as db:
        db.add_all([models.CouponCampaign(id="new20", name="新人 20 元券", value_fen=2000),
                    models.CouponCampaign(id="old", name="结束了", status="ended")])
    html = _form(admin, "action.issue_coupon", {"campaign": "new20"})
    assert read_form(html).controls["campaign"]["tag"] == "select"
    assert '<option value="new20" selected>新人 20 元券 (new20)</option>' in html and "结束了" not in html


def test_submitting_answers_errors_per_field_and_ports(login: Callable[..., Session]) -> None:
    admin = login("marketer")
    answer = _submit(admin, "logic.switch", [
        ("_type", "logic.switch"), ("_prev", "{}"), ("cases.0.port", "vip"), ("cases.0.expr", "customer.vip >"),
        ("cases.5.port", "b b"), ("cases.5.expr", "true"), ("cases.7.port", ""), ("cases.7.expr", ""),
    ])
    assert answer["ok"] is False and answer["ports"] is None  # the invalid config keeps the canvas's ports
    assert "语法错误" in answer["errors"]["cases.0.expr"]  # in the page's language (zh-CN by default)
    assert "cases.5.port" in answer["errors"]  # the row's form index, though it is item 1 of the list
    assert answer["config"] == {"cases": [{"port": "vip", "expr": "customer.vip >"}, {"port": "b b", "expr": "true"}]}
    good = _submit(admin, "logic.switch", [("_type", "logic.switch"), ("cases.0.port", "vip"),
                                           ("cases.0.expr", "customer.vip_level > 1")])
    assert good["ok"] and good["ports"] == ["vip", "default"]
    missing = _submit(admin, "action.send_message", [("_type", "action.send_message"), ("channel", "wecom")])
    assert missing["errors"] == {"template": "必填"} and missing["config"] == {"channel": "wecom"}
    bad_json = _submit(admin, "action.update_profile", [("_type", "action.update_profile"), ("set", "{oops")])
    assert bad_json["errors"]["set"].startswith("不是有效的 JSON")
    wrong = admin.post("/flows/welcome-new-contact/nodes/n1/config", data={"_type": "no.such"})
    assert wrong.status_code == 422


def test_parse_form_leaves_untouched_defaults_out() -> None:
    schema = default_registry().types["action.send_message"].schema()
    fields = build_form(schema, {"template": "hi"})
    assert [f.name for f in fields] == ["channel", "template", "category", "fallback_channel", "attachments"]
    form = {"channel": "dry-run", "template": "hi", "category": "promotional", "fallback_channel": "",
            "attachments": ""}
    assert parse_form(schema, form, {"template": "x"}).config == {"template": "hi"}
    kept = parse_form(schema, form, {"template": "x", "channel": "dry-run"}).config
    assert kept == {"template": "hi", "channel": "dry-run"}  # present before: stays explicit


def test_widgets_and_ports_helpers() -> None:
    root: dict[str, Any] = {}
    assert widget_of({"type": "string", "format": "duration"}, root) == "duration"
    assert widget_of({"type": "array", "items": {"type": "integer"}}, root) == "numbers"
    assert widget_of({"type": "object", "additionalProperties": {"type": "integer"}}, root) == "pairs"
    assert widget_of({"anyOf": [{"type": "string"}, {"type": "integer"}]}, root) == "json"
    assert widget_of({"const": "only", "type": "string"}, root) == "select"  # Literal["only"]
    literal = {"type": "object", "properties": {"mode": {"const": "fixed", "type": "string"}}, "required": ["mode"]}
    assert build_form(literal, {})[0].options == [("fixed", "fixed")]
    assert parse_form(literal, {"mode": "fixed"}).config == {"mode": "fixed"}
    split = default_registry().types["logic.split"]
    assert ports_of(split, {"branches": [{"port": "A", "weight": 1}, {"port": "B", "weight": 1}]}) == ["A", "B"]
    assert ports_of(split, {"branches": []}) == []
    assert ports_of(None, {}) == []
    pickers = Pickers(campaigns=[("c1", "C1")])
    field = build_form(default_registry().types["action.issue_coupon"].schema(), {}, pickers)[0]
    assert field.widget == "select" and ("c1", "C1") in field.options


def test_flow_settings_form_renders_and_parses(login: Callable[..., Session]) -> None:
    admin = login("admin")
    r = admin.get("/flows/welcome-new-contact/settings/form")
    assert r.status_code == 200
    reader = read_form(r.text)
    assert {"name", "settings.timezone", "settings.goal.event", "settings.quiet_hours.start",
            "settings.exit_on.0.event", "settings.frequency_capped"} <= set(reader.controls)
    answer = admin.post("/flows/welcome-new-contact/settings", data=reader.fields).json()
    document = json.loads((FLOWS / "welcome-new-contact.json").read_text(encoding="utf-8"))
    assert answer["ok"], answer["errors"]
    assert answer["config"]["settings"] == document["settings"] and answer["config"]["name"] == document["name"]
    fields = [(k, v) for k, v in reader.fields if not k.startswith("settings.quiet_hours")]
    fields = [(k, "Mars/Olympus" if k == "settings.timezone" else v) for k, v in fields]
    changed = admin.post("/flows/welcome-new-contact/settings", data=fields).json()
    assert "quiet_hours" not in changed["config"]["settings"]  # an emptied optional group is removed
    assert changed["config"]["settings"]["timezone"] == "Mars/Olympus"  # the validator reports it on the canvas


def test_durations_are_a_number_and_a_unit_and_stay_iso_8601_in_the_json() -> None:
    """The widget shows P7D as 7 days and PT30M as 30 minutes; what it posts back is ISO 8601 again, an
    untouched value keeps its text, a changed one is written canonically, and nonsense is a field error."""
    schema = default_registry().get("wait.event").schema()  # type: ignore[union-attr]
    sla = default_registry().get("ticket.sla")
    assert sla is not None
    for stored, amount, unit in (("P7D", "7", "days"), ("PT30M", "30", "minutes"), ("P1DT2H", "26", "hours"),
                                 ("P1W", "7", "days")):
        field = next(f for f in build_form(schema, {"event": "order.paid", "timeout": stored})
                     if f.key == "timeout")
        assert (field.widget, field.attrs["amount"], field.attrs["unit"]) == ("duration", amount, unit)
        posted = {"event": "order.paid", "timeout.amount": amount, "timeout.unit": unit}
        assert parse_form(schema, posted, {"event": "order.paid", "timeout": stored}).config["timeout"] == stored
    changed = parse_form(schema, {"event": "order.paid", "timeout.amount": "36", "timeout.unit": "hours"},
                         {"event": "order.paid", "timeout": "P7D"})
    assert changed.config["timeout"] == "P1DT12H" and not changed.errors
    wrong = parse_form(schema, {"event": "order.paid", "timeout.amount": "七", "timeout.unit": "days"},
                       {"event": "order.paid", "timeout": "P7D"})
    assert "不是有效的数量" in wrong.errors["timeout"] and wrong.config["timeout"] == "P7D"  # the form's language
    with i18n.language("en"):
        wrong = parse_form(schema, {"event": "order.paid", "timeout.amount": "七", "timeout.unit": "days"},
                           {"event": "order.paid", "timeout": "P7D"})
    assert "not a number" in wrong.errors["timeout"]
    assert parse_form(schema, {"event": "order.paid", "timeout": "PT2H"}).config["timeout"] == "PT2H"  # ISO posted
    # SLA targets per priority (dict keyed by P1…P4) and flow settings get the same widget
    targets = next(f for f in build_form(sla.schema(), {"targets": {"P2": {"resolution": "PT4H"}}})
                   if f.key == "targets")
    p2 = next(c for c in targets.children if c.key == "P2")
    assert [(c.key, c.widget, c.attrs["amount"]) for c in p2.children][-1] == ("resolution", "duration", "4")
    parsed = parse_form(sla.schema(), {"targets.P1.first_response.amount": "15", "targets.P1.first_response.unit":
                                       "minutes", "targets.P2.resolution.amount": "1", "targets.P2.resolution.unit":
                                       "days", "escalation": '["notify_supervisor"]'}, model=sla.Config)
    assert parsed.config["targets"] == {"P1": {"first_response": "PT15M"}, "P2": {"resolution": "P1D"}}
    assert not parsed.errors
    from designer.flows.editor import settings_schema

    document = {"settings": {"goal": {"event": "order.paid", "within": "P14D"}}}
    goal = next(f for f in build_form(settings_schema(), document) if f.key == "settings")
    within = next(c for c in next(c for c in goal.children if c.key == "goal").children if c.key == "within")
    assert (within.widget, within.attrs["amount"], within.attrs["unit"]) == ("duration", "14", "days")
