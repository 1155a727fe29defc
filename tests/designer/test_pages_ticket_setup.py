"""Ticket groups, agents and ticket types on pages (not only the API): ops add and change them, a mistake is
said at its field, every save is in the audit log before → after, and an agent cannot open them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.db import models
from engine.db.session import session_factory
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> Any:
    add_users(db_url)  # (the migrations made the "default" ticket group)
    return build_app(db_url)


def _uid(db_url: str, username: str) -> int:
    with session_factory(db_url)() as db:
        found = db.scalar(select(models.User.id).where(models.User.username == username))
        assert found is not None
        return int(found)


def test_ops_set_up_a_group_an_agent_and_a_type_on_pages(app: Any, db_url: str) -> None:
    ops = Browser(app, "ops")
    assert ops.get("/tickets/setup/groups").status_code == 200
    bad = ops.post_form("/tickets/setup/groups/new", {"key": "售后 组", "name": "售后组", "strategy": "least_loaded",
                                                      "capacity": "5", "notify_channel": "dry-run"})
    assert bad.status_code == 422 and 'data-field="key"' in bad.text and 'value="售后组"' in bad.text
    made = ops.post_form("/tickets/setup/groups/new", {"key": "after-sales", "name": "售后组",
                                                       "strategy": "least_loaded", "supervisor_id": str(
                                                           _uid(db_url, "ops")), "capacity": "5",
                                                       "notify_channel": "dry-run"})
    assert made.status_code == 303
    listing = ops.get("/tickets/setup/groups").text
    assert 'data-group="after-sales"' in listing and "负载最少优先" in listing
    again = ops.post_form("/tickets/setup/groups/new", {"key": "after-sales", "name": "x", "strategy": "round_robin",
                                                        "capacity": "5", "notify_channel": "dry-run"})
    assert again.status_code == 409 and "工单组「after-sales」已存在" in again.text  # the reason, in the page's words
    edited = ops.post_form("/tickets/setup/groups/after-sales", {"name": "售后一组", "strategy": "round_robin",
                                                                 "capacity": "0", "notify_channel": "dry-run"})
    assert edited.status_code == 422 and 'data-field="capacity"' in edited.text
    ops.post_form("/tickets/setup/groups/after-sales", {"name": "售后一组", "strategy": "round_robin", "capacity": "8",
                                                        "notify_channel": "dry-run"})
    change = audit_entries(db_url, "agent_group.updated", "agent_group:after-sales")[-1]
    # only what changed (the form sent no supervisor: it was removed)
    assert change.before == {"name": "售后组", "strategy": "least_loaded", "capacity": 5,
                             "supervisor_id": _uid(db_url, "ops")}
    assert change.after == {"name": "售后一组", "strategy": "round_robin", "capacity": 8, "supervisor_id": None}

    agent_id = _uid(db_url, "agent")
    picked = ops.get("/tickets/setup/agents/pick", params={"user_id": str(agent_id)}, follow_redirects=False)
    assert picked.headers["location"] == f"/tickets/setup/agents/{agent_id}"
    assert ops.get(picked.headers["location"]).status_code == 200
    r = ops.client.post(f"/tickets/setup/agents/{agent_id}", data={
        "csrf_token": ops.csrf, "group": ["after-sales"], "skills": "空调，冰箱", "capacity": "",
        "availability": "away", "contact.wecom_userid": "LiLei"}, follow_redirects=False)
    assert r.status_code == 303
    with session_factory(db_url)() as db:
        agent = db.get(models.Agent, agent_id)
        assert agent is not None and agent.groups == ["after-sales"] and agent.skills == ["空调", "冰箱"]
        assert agent.contact == {"wecom_userid": "LiLei"} and agent.capacity is None
    assert f'data-agent="{agent_id}"' in ops.get("/tickets/setup/agents").text
    assert audit_entries(db_url, "agent.created", "user:agent")

    r = ops.client.post("/tickets/setup/types/new", data={
        "csrf_token": ops.csrf, "key": "repair", "name": "设备报修", "flow_id": "", "default_group": "after-sales",
        "default_priority": "P2", "auto_refund": "",
        "fields.0.key": "model", "fields.0.label": "型号", "fields.0.type": "text",
        "fields.1.key": "kind", "fields.1.label": "故障类型", "fields.1.type": "choice", "fields.1.choices": "",
        "fields.2.key": "", "fields.2.label": "", "fields.2.type": "text"}, follow_redirects=False)
    assert r.status_code == 422 and "需要填写选项" in r.text  # a choice field without choices
    r = ops.client.post("/tickets/setup/types/new", data={
        "csrf_token": ops.csrf, "key": "repair", "name": "设备报修", "flow_id": "", "default_group": "after-sales",
        "default_priority": "P2", "auto_refund": "1",
        "fields.0.key": "model", "fields.0.label": "型号", "fields.0.type": "text", "fields.0.required": "1",
        "fields.1.key": "kind", "fields.1.label": "故障类型", "fields.1.type": "choice",
        "fields.1.choices": "不制冷，漏水",
        "fields.2.key": "", "fields.2.label": "", "fields.2.type": "text"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with session_factory(db_url)() as db:
        kind = db.get(models.TicketType, "repair")
        assert kind is not None and kind.auto_events == ["refund.requested"] and kind.default_priority == "P2"
        assert [(f["key"], f["required"], f["choices"]) for f in kind.fields] == [
            ("model", True, []), ("kind", False, ["不制冷", "漏水"])]
    page = ops.get("/tickets/setup/types/repair").text
    assert 'value="不制冷, 漏水"' in page and "设备报修" in page
    assert audit_entries(db_url, "ticket_type.created", "ticket_type:repair")


def test_agents_cannot_open_the_set_up_pages(app: Any) -> None:
    agent = Browser(app, "agent")
    for path in ("/tickets/setup/groups", "/tickets/setup/agents", "/tickets/setup/types",
                 "/tickets/setup/groups/new"):
        r = agent.get(path)
        assert r.status_code == 403 and "<html" in r.text, path
    assert agent.post_form("/tickets/setup/groups/new", {"key": "x", "name": "x"}).status_code == 403
