"""The shipped flow templates (flows/*.json) and the demo customers (flows/demo/customers.json)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine import expressions
from engine.compiler import compile_flow
from engine.customers import check_kind, normalise, resolve, tags_of
from engine.db.session import transaction
from engine.validate import validate

FLOWS = Path(__file__).resolve().parents[2] / "flows"
TEMPLATES = sorted(FLOWS.glob("*.json"))
CUSTOMERS = FLOWS / "demo" / "customers.json"
#: the canvas draws a node as a box of about this size; two boxes must not overlap
NODE_W, NODE_H = 200, 100
HAN = re.compile(r"[\u4e00-\u9fff]")


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def demo_customers() -> list[dict[str, Any]]:
    customers = load(CUSTOMERS)["customers"]
    assert isinstance(customers, list)
    return customers


def test_templates_are_shipped() -> None:
    ids = {p.stem for p in TEMPLATES}
    assert {"welcome-new-contact", "browse-3-no-order", "delivered-survey", "no-repurchase-7d", "win-back-30d",
            "win-back-reset", "birthday-care", "ab-cart-reminder"} <= ids


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_validates_and_compiles(path: Path) -> None:
    doc = load(path)
    result = validate(doc)
    assert result.ok, [p.as_dict() for p in result.problems]
    compiled = compile_flow(doc)
    assert compiled["flow_id"] == doc["id"] == path.stem
    assert len(compiled["nodes"]) == len(doc["nodes"])


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_reads_well(path: Path) -> None:
    doc = load(path)
    assert doc["schema"] == "tideflow/flow@1"
    assert HAN.search(doc["name"]), "a Chinese name"
    assert HAN.search(doc.get("description") or ""), "a Chinese description"
    assert doc["settings"]["timezone"] == "Asia/Shanghai"
    if doc.get("kind", "journey") == "journey":  # ticket and settlement flows have no customer to leave
        assert {"event": "customer.unsubscribed"} in doc["settings"]["exit_on"]
    for node in doc["nodes"]:
        assert HAN.search(node.get("name") or ""), f"node {node['id']} needs a Chinese name for the canvas"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_has_unique_ids_and_ui_positions(path: Path) -> None:
    nodes = load(path)["nodes"]
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids))
    positions = [(n["ui"]["x"], n["ui"]["y"]) for n in nodes]
    assert all(isinstance(c, int) and c >= 0 for xy in positions for c in xy)
    assert len(positions) == len(set(positions))
    for i, (x1, y1) in enumerate(positions):
        for x2, y2 in positions[i + 1:]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H, f"{ids[i]} overlaps another node"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_is_laid_out_left_to_right(path: Path) -> None:
    doc = load(path)
    x = {n["id"]: n["ui"]["x"] for n in doc["nodes"]}
    trigger = next(n for n in doc["nodes"] if n["type"].startswith("trigger."))
    assert x[trigger["id"]] == min(x.values())
    for edge in doc["edges"]:
        assert x[edge["to"]] > x[edge["from"]], f"edge {edge} points backwards"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_messages_use_wecom_with_a_dry_run_fallback(path: Path) -> None:
    sends = [n for n in load(path)["nodes"] if n["type"] == "action.send_message"]
    for node in sends:
        config = node["config"]
        assert config["channel"] in ("wecom", "dry-run")
        if config["channel"] != "dry-run":
            assert config.get("fallback_channel") == "dry-run", node["id"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_message_templates_render_for_every_demo_customer(path: Path) -> None:
    sends = [n for n in load(path)["nodes"] if n["type"] == "action.send_message"]
    for customer in demo_customers():
        view = {**customer["attributes"], "name": customer["name"], "tags": customer["tags"]}
        for node in sends:
            text = expressions.render(node["config"]["template"], {"customer": view, "event": {}, "vars": {}})
            assert customer["name"] in text
            assert "{{" not in text and "}}" not in text


def test_win_back_reaches_each_silent_customer_once() -> None:
    audience = load(FLOWS / "win-back-30d.json")["nodes"][0]["config"]["audience"]
    reset = load(FLOWS / "win-back-reset.json")["nodes"][0]["config"]["filter"]
    tagged = load(FLOWS / "win-back-30d.json")["nodes"][-1]["config"]["add"]
    for customer in demo_customers():
        view = {**customer["attributes"], "name": customer["name"], "tags": customer["tags"]}
        silent = customer["attributes"]["days_since_interaction"] >= 30
        already = "沉默唤醒" in customer["tags"]
        assert expressions.test(audience, {"customer": view}) is (silent and not already)
        after = {**view, "tags": [*view["tags"], *tagged]}  # once messaged, the next daily run skips them
        assert expressions.test(audience, {"customer": after}) is False
        assert expressions.test(reset, {"customer": after}) is True
    assert any(c["attributes"]["days_since_interaction"] >= 30 and "沉默唤醒" in c["tags"] for c in demo_customers())


# -- demo customers --------------------------------------------------------------------------------
def test_demo_customers_are_well_formed() -> None:
    customers = demo_customers()
    assert 15 <= len(customers) <= 30
    seen: set[tuple[str, str]] = set()
    for customer in customers:
        assert HAN.search(customer["name"])
        assert set(customer) <= {"name", "identities", "attributes", "tags", "timezone"}
        for kind, value in customer["identities"].items():
            check_kind(kind)
            key = (kind, normalise(kind, value))
            assert key not in seen, f"identity {key} is used twice"
            seen.add(key)
        phone = customer["identities"]["phone"]
        assert re.fullmatch(r"138000000\d\d", phone), "clearly fake phone numbers"
        assert customer["identities"].get("email", "x@example.com").endswith("@example.com")
        attrs = customer["attributes"]
        assert {"orders_count", "days_since_interaction", "birthday", "vip_level"} <= set(attrs)
        assert all(isinstance(attrs[k], int) and attrs[k] >= 0
                   for k in ("orders_count", "days_since_interaction", "vip_level"))
        assert date.fromisoformat(attrs["birthday"]).year < 2010
        assert all(isinstance(t, str) and 0 < len(t) <= 80 for t in customer["tags"])


def test_demo_data_exercises_the_templates() -> None:
    customers = demo_customers()
    attrs = [c["attributes"] for c in customers]
    assert any(a["orders_count"] == 0 for a in attrs) and any(a["orders_count"] > 0 for a in attrs)
    idle = [a["days_since_interaction"] for a in attrs]
    assert any(d >= 30 for d in idle) and any(d < 30 for d in idle)
    assert {min(a["vip_level"], 3) for a in attrs} >= {0, 1, 3}
    assert any(a["birthday"].endswith("-02-29") for a in attrs)
    assert any("wecom_external_userid" not in c["identities"] for c in customers)


def test_demo_customers_load_into_the_database(db_url: str) -> None:
    ids = []
    with transaction(db_url) as db:
        from engine.db import models

        for customer in demo_customers():
            cid = resolve(db, customer["identities"], customer["name"], customer["attributes"])
            for tag in customer["tags"]:
                db.add(models.CustomerTag(customer_id=cid, tag=tag))
            ids.append(cid)
        db.flush()
        assert len(set(ids)) == len(ids)
        assert tags_of(db, ids[0]) == sorted(demo_customers()[0]["tags"])
        assert resolve(db, {"phone": "+86 138 0000 0001"}) == ids[0]
