"""/flows: list, search and filters, create from blank or a template, duplicate, archive and restore —
roles enforced, every change audited, both languages."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from designer.auth import unguarded_routes
from engine.db.session import transaction
from engine.flow_templates import blank_flow, flow_templates
from engine.validate import validate
from tests.dbtemplate import seeded_sqlite
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app, flow
from tideflow.demo import seed


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    seeded_sqlite(db_url, add_users)  # before seeding, so the demo admin is ours
    return build_app(db_url)


def _settlement_flow(db_url: str, flow_id: str = "agent-commission") -> None:
    from engine import flows as flowsvc

    with transaction(db_url) as db:
        flowsvc.save_draft(db, blank_flow(flow_id, "代理商月度佣金", "settlement"), "finance")


def test_every_page_route_is_guarded(app: FastAPI) -> None:
    assert unguarded_routes(app) == []


def test_pages_need_a_login(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app)
    for path in ("/flows", "/flows/new", "/customers", "/journeys", "/audit"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=" + path


def test_flow_list_in_both_languages(app: FastAPI) -> None:
    zh = Browser(app, "marketer")
    page = zh.get("/flows")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "新建流程" in page.text and "新客欢迎旅程" in page.text
    assert "运行中" in page.text and "客户旅程" in page.text and 'name="csrf_token"' in page.text
    en = zh.get("/flows?lang=en")
    assert '<html lang="en">' in en.text and ">Flows<" in en.text and "New flow" in en.text and "Active" in en.text
    assert en.cookies.get("tideflow_lang") == "en"
    assert '<html lang="en">' in zh.get("/flows").text  # the choice is remembered by cookie
    by_header = Browser(app, "ops", lang="en-US,en;q=0.9")
    assert '<html lang="en">' in by_header.get("/flows").text
    assert '<html lang="en">' in by_header.get("/flows/new").text


def test_search_and_filters(app: FastAPI, db_url: str) -> None:
    user = Browser(app, "marketer")
    found = user.get("/flows", params={"q": "生日"}).text
    assert "birthday-care" in found and "welcome-new-contact" not in found
    assert "welcome-new-contact" in user.get("/flows", params={"q": "WELCOME"}).text  # ids, case-insensitive
    tickets = user.get("/flows", params={"kind": "ticket"}).text
    assert 'data-flow="refund-ticket"' in tickets and 'data-flow="welcome-new-contact"' not in tickets
    _settlement_flow(db_url)
    settlement = user.get("/flows", params={"kind": "settlement"}).text
    assert 'data-flow="agent-commission"' in settlement and 'data-flow="welcome-new-contact"' not in settlement
    drafts = user.get("/flows", params={"status": "draft"}).text
    assert 'data-flow="agent-commission"' in drafts and 'data-flow="birthday-care"' not in drafts
    assert user.get("/flows", params={"kind": "nonsense", "status": "x' OR 1=1"}).status_code == 200


def test_an_agent_gets_a_friendly_403(app: FastAPI) -> None:
    agent = Browser(app, "agent")
    for path in ("/flows", "/flows/new", "/journeys"):
        r = agent.get(path)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "没有权限" in r.text and "坐席" in r.text and "运营" in r.text  # your role, the roles needed
    en = agent.get("/flows?lang=en")
    assert en.status_code == 403 and "Access denied" in en.text and "Your role is “agent”" in en.text
    assert agent.post_form("/flows/new", {"id": "x", "name": "x", "kind": "journey"}).status_code == 403
    assert agent.post_form("/flows/welcome-new-contact/archive").status_code == 403


def test_create_from_blank_gives_a_draft_with_the_kinds_trigger(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    r = marketer.post_form("/flows/new", {"id": "spring-sale", "name": "春季大促", "kind": "journey"})
    assert r.status_code == 303 and r.headers["location"] == "/flows/spring-sale/edit"
    record = flow(db_url, "spring-sale")
    assert record is not None and record.status == "draft" and record.kind == "journey" and record.name == "春季大促"
    assert [n["type"] for n in record.draft["nodes"]] == ["trigger.event"]
    problems = validate(record.draft).problems  # a draft may be invalid; the canvas shows what to finish
    assert any(p.node == "start" and p.field == "config.event" for p in problems)
    [entry] = audit_entries(db_url, "flow.created", "spring-sale")
    assert entry.actor == "marketer"

    finance = Browser(app, "finance")
    r = finance.post_form("/flows/new", {"id": "monthly-run", "name": "月结", "kind": "settlement"})
    assert r.status_code == 303
    settlement = flow(db_url, "monthly-run")
    assert settlement is not None and settlement.draft["nodes"][0]["type"] == "trigger.schedule"
    assert validate(settlement.draft).flow is not None


@pytest.mark.parametrize(("form", "status", "message"), [
    ({"id": "welcome-new-contact", "name": "x", "kind": "journey"}, 409, "已被占用"),
    ({"id": "-bad id", "name": "x", "kind": "journey"}, 422, "ID 只能包含"),
    ({"id": "new", "name": "x", "kind": "journey"}, 422, "保留字"),
    ({"id": "ok-id", "name": "  ", "kind": "journey"}, 422, "请填写名称"),
    ({"id": "ok-id", "name": "x", "kind": "campaign"}, 422, "请选择一种流程类型"),
])
def test_create_from_blank_explains_what_is_wrong(app: FastAPI, db_url: str, form: dict[str, str], status: int,
                                                 message: str) -> None:
    r = Browser(app, "marketer").post_form("/flows/new", form)
    assert r.status_code == status and message in r.text and 'role="alert"' in r.text
    assert f'value="{form["id"]}"' in r.text  # what was typed is kept
    assert flow(db_url, "ok-id") is None


def test_roles_limit_the_kinds_one_may_create(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    r = marketer.post_form("/flows/new", {"id": "payout", "name": "x", "kind": "settlement"})
    assert r.status_code == 403 and "不能修改「结算」类型的流程" in r.text and "财务" in r.text
    assert flow(db_url, "payout") is None
    page = marketer.get("/flows/new").text
    assert 'value="journey"' in page and 'value="settlement"' not in page
    developer = Browser(app, "developer")  # reads flows, creates none
    assert developer.get("/flows").status_code == 200 and "新建流程" not in developer.get("/flows").text
    assert developer.get("/flows/new").status_code == 403


def test_create_from_a_template(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    page = marketer.get("/flows/new").text
    for tpl in flow_templates():  # a marketer is offered the journey templates only
        assert (f'data-template="{tpl.key}"' in page) == (tpl.kind == "journey")
    assert 'value="welcome-new-contact-2"' in page  # the template's own id is taken by the seeded flow
    assert "添加企业微信好友后发送欢迎语" in page  # the description

    r = marketer.post_form("/flows/new/from-template",
                           {"template": "welcome-new-contact", "id": "welcome-spring", "name": "春季新客欢迎"})
    assert r.status_code == 303 and r.headers["location"] == "/flows/welcome-spring/edit"
    record = flow(db_url, "welcome-spring")
    template = next(t for t in flow_templates() if t.key == "welcome-new-contact")
    assert record is not None and record.status == "draft" and record.name == "春季新客欢迎"
    assert record.draft["nodes"] == template.document["nodes"] and record.draft["edges"] == template.document["edges"]
    assert validate(record.draft).ok
    [entry] = audit_entries(db_url, "flow.created_from_template", "welcome-spring")
    assert entry.actor == "marketer" and entry.detail == {"template": "welcome-new-contact"}
    assert audit_entries(db_url, "flow.created", "welcome-spring")

    taken = marketer.post_form("/flows/new/from-template", {"template": "birthday-care", "id": "welcome-spring"})
    assert taken.status_code == 409 and "已被占用" in taken.text
    assert re.search(r'data-template="birthday-care".*?role="alert"', taken.text, re.S)
    unknown = marketer.post_form("/flows/new/from-template", {"template": "../etc/passwd", "id": "x1"})
    assert unknown.status_code == 404 and "找不到模板" in unknown.text
    assert Browser(app, "ops").post_form(
        "/flows/new/from-template", {"template": "birthday-care", "id": "x2"}).status_code == 403


def test_duplicate(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    listing = marketer.get("/flows").text
    assert 'action="/flows/welcome-new-contact/duplicate"' in listing and 'value="welcome-new-contact-copy"' in listing
    r = marketer.post_form("/flows/welcome-new-contact/duplicate",
                           {"new_id": "welcome-copy", "name": "", "back": "/flows?kind=journey"})
    assert r.status_code == 303
    assert r.headers["location"] == "/flows?kind=journey&notice=duplicated&id=welcome-copy"
    shown = marketer.get(r.headers["location"]).text
    assert "已复制为新草稿 welcome-copy" in shown and 'data-flow="welcome-copy"' in shown
    copy, source = flow(db_url, "welcome-copy"), flow(db_url, "welcome-new-contact")
    assert copy is not None and source is not None
    assert copy.status == "draft" and copy.name == "新客欢迎旅程（副本）" and copy.current_version is None
    assert copy.draft["nodes"] == source.draft["nodes"]
    [entry] = audit_entries(db_url, "flow.duplicated", "welcome-copy")
    assert entry.actor == "marketer" and entry.detail == {"from": "welcome-new-contact", "from_version": 1}

    assert marketer.post_form("/flows/welcome-new-contact/duplicate", {"new_id": "welcome-copy"}).status_code == 409
    assert marketer.post_form("/flows/nope/duplicate", {"new_id": "nope2"}).status_code == 404
    assert marketer.post_form("/flows/welcome-new-contact/duplicate",
                              {"new_id": "evil", "back": "https://evil.example/"}).headers["location"].startswith("/?")


def test_archive_and_restore(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    r = marketer.post_form("/flows/welcome-new-contact/archive", {"back": "/flows"})
    assert r.status_code == 303 and r.headers["location"] == "/flows?notice=archived&id=welcome-new-contact"
    record = flow(db_url, "welcome-new-contact")
    assert record is not None and record.status == "archived"
    assert 'data-flow="welcome-new-contact"' not in marketer.get("/flows").text  # hidden by default
    archived = marketer.get("/flows?status=archived").text
    assert 'data-flow="welcome-new-contact"' in archived and 'action="/flows/welcome-new-contact/restore"' in archived
    [entry] = audit_entries(db_url, "flow.archived", "welcome-new-contact")
    assert entry.actor == "marketer" and entry.detail == {"from": "active", "to": "archived"}

    assert marketer.post_form("/flows/welcome-new-contact/restore").status_code == 303
    record = flow(db_url, "welcome-new-contact")
    assert record is not None and record.status == "paused"  # published before: back paused, not sending
    [entry] = audit_entries(db_url, "flow.restored", "welcome-new-contact")
    assert entry.detail == {"from": "archived", "to": "paused"}

    marketer.post_form("/flows/new", {"id": "never-published", "name": "x", "kind": "journey"})
    marketer.post_form("/flows/never-published/archive")
    marketer.post_form("/flows/never-published/restore")
    record = flow(db_url, "never-published")
    assert record is not None and record.status == "draft"


def test_a_marketer_cannot_archive_a_settlement_flow(app: FastAPI, db_url: str) -> None:
    _settlement_flow(db_url)
    marketer = Browser(app, "marketer")
    row = re.search(r'<tr data-flow="agent-commission">.*?</tr>', marketer.get("/flows").text, re.S)
    assert row is not None and "/archive" not in row.group() and "/duplicate" not in row.group()
    r = marketer.post_form("/flows/agent-commission/archive")
    assert r.status_code == 403 and "结算" in r.text and "财务" in r.text
    assert marketer.post_form("/flows/agent-commission/duplicate", {"new_id": "mine"}).status_code == 403
    record = flow(db_url, "agent-commission")
    assert record is not None and record.status == "draft" and not audit_entries(db_url, "flow.archived")
    assert Browser(app, "finance").post_form("/flows/agent-commission/archive").status_code == 303
    assert Browser(app, "admin").post_form("/flows/agent-commission/restore").status_code == 303


def test_forms_need_the_csrf_token(app: FastAPI, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    r = marketer.post_form("/flows/welcome-new-contact/archive", csrf=False)
    assert r.status_code == 403
    record = flow(db_url, "welcome-new-contact")
    assert record is not None and record.status == "active"


def test_every_page_and_action_on_sqlite_and_postgresql(any_db_url: str, cheap_passwords: None) -> None:
    from engine.customers import resolve
    from engine.db import models

    add_users(any_db_url)
    seed(any_db_url)
    with transaction(any_db_url) as db:
        cid = resolve(db, {"phone": "13900000009"}, "周九")
        db.add(models.Journey(workflow_id=f"journey/welcome-new-contact/{cid}", flow_id="welcome-new-contact",
                              version=1, customer_id=cid, status="waiting", current_node="wait1"))
        db.add(models.Message(idempotency_key="pg-1", customer_id=cid, channel="wecom", content="hi",
                              status="skipped: capped", workflow_id=f"journey/welcome-new-contact/{cid}"))
    app = build_app(any_db_url)
    admin = Browser(app, "admin")
    for path, shown in [("/flows?q=Welcome&kind=journey&status=active", "welcome-new-contact"),
                        ("/flows/new", "birthday-care-2"),
                        ("/customers?q=13900000009", "周九"), (f"/customers/{cid}", "139****0009"),
                        ("/journeys?flow=welcome-new-contact&status=waiting", "周九"),
                        (f"/journeys/journey/welcome-new-contact/{cid}", "skipped: capped"),
                        ("/audit?action=flow.&actor=demo&page=1", "flow.published")]:
        r = admin.get(path)
        assert r.status_code == 200 and shown in r.text, path
    marketer = Browser(app, "marketer")
    for path, form in [("/flows/new", {"id": "pg-blank", "name": "空白", "kind": "journey"}),
                       ("/flows/new/from-template", {"template": "birthday-care", "id": "pg-birthday"}),
                       ("/flows/pg-birthday/duplicate", {"new_id": "pg-birthday-2"}),
                       ("/flows/pg-birthday-2/archive", {}), ("/flows/pg-birthday-2/restore", {})]:
        assert marketer.post_form(path, form).status_code == 303, path
    assert [e.action for e in audit_entries(any_db_url, "flow.restored", "pg-birthday-2")] == ["flow.restored"]
