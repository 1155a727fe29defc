"""Screens that tell the truth, in real Chromium (the designer served live; no workflow engine needed here —
failed journeys and reopened tickets run on the real stack in test_browser_journey_failures.py):

- the editor's save indicator: a 2 MB template is refused at its field and the editor says "not saved", never
  "Draft saved"; a normal edit then saves;
- the preview: an order scripted on day 4 after an unsubscribe on day 2 shows as arriving after the end, ignored;
- the ticket console: a refund ticket answers over the customer's own channel (SMS, not WeCom), warns before the
  agent writes that the channel is not set up, and after sending says the reply did not reach the customer;
  claiming keeps the row and updates it in place; coming online offers the tickets queued while everyone was away;
- every download and export link gives its file: a statement's and a run's CSV, the audit log's CSV, a decision
  table's DMN, a channel code's QR code (PNG, SVG) and poster.

Saves docs/screenshots/editor-save-refused.png, ticket-reply-not-sent.png and preview-ignored.png."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from activities.tickets import service
from engine import events as ingest
from engine import flows as flowsvc
from engine.db import models
from engine.db.growth_models import GrowthChannel
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from tests.activities.settlement.settlement_kit import order
from tests.e2e import browser as kit

pytestmark = pytest.mark.browser
FLOWS = Path(__file__).resolve().parents[2] / "flows"
WELCOME = json.loads((FLOWS / "welcome-new-contact.json").read_text(encoding="utf-8"))


def _api(page: Page, base: str, path: str) -> Any:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return httpx.get(f"{base}{path}", cookies=cookies, timeout=30).json()


# -- the editor and the preview ---------------------------------------------------------------------------


def test_a_refused_template_is_never_called_saved_and_an_event_after_the_end_is_shown_ignored(
        live_server: kit.LiveServer, page: Page) -> None:
    base = live_server.url
    kit.add_user(live_server.database_url, "mia", "marketer")
    with transaction(live_server.database_url) as db:
        flowsvc.save_draft(db, WELCOME, "mia")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    kit.login(page, base, "mia", next_path="/flows/welcome-new-contact/edit")
    page.locator('.drawflow-node[data-tf="hello"]').click()
    form = page.locator('form.tf-form[data-node="hello"]')
    template = form.locator('[name="template"]')
    expect(template).to_be_visible()
    before = template.input_value()

    # 2 MB pasted into the template, then Save at once (the change is not even sent yet)
    template.evaluate("(el) => { el.value = '优惠'.repeat(700000);"
                      " el.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.locator("#tf-save").click()
    status = page.locator("#tf-status")
    # the refusal, not "有未保存的修改", which the edit itself put there before Save was pressed
    expect(status).to_contain_text("未保存：属性表单里的修改没有被服务器接受")
    expect(status).not_to_contain_text("已保存草稿")
    expect(form.locator('[data-error-for="_form"]')).to_contain_text("内容太大")
    expect(form.locator(".tf-form-status")).to_contain_text("未应用")
    kit.screenshot(page, "editor-save-refused")
    saved = _api(page, base, "/api/flows/welcome-new-contact")["document"]
    hello = next(n for n in saved["nodes"] if n["id"] == "hello")
    assert hello["config"]["template"] == before  # the server kept the old text, and the page said so

    # a normal edit saves, and says so
    template.fill("你好 {{ customer.name }}，欢迎！")
    page.locator("#tf-save").click()
    expect(status).to_have_text("已保存草稿")
    saved = _api(page, base, "/api/flows/welcome-new-contact")["document"]
    hello = next(n for n in saved["nodes"] if n["id"] == "hello")
    assert hello["config"]["template"] == "你好 {{ customer.name }}，欢迎！"

    # preview: unsubscribed on day 2, an order on day 4 — shown as after the end, ignored (no crash)
    page.locator("#tf-tab-preview").click()
    preview = page.locator("#tf-preview-form")
    for at, kind in (("day 2", "customer.unsubscribed"), ("day 4", "order.paid")):
        preview.locator("[data-add-row]").click()
        row = preview.locator('[name$=".at"]').last
        row.fill(at)
        preview.locator('[name$=".type"]').last.fill(kind)
    preview.locator("button[type=submit]").click()
    timeline = page.locator("#tf-timeline")
    ignored = timeline.locator("li.tf-what-ignored")
    expect(ignored).to_have_count(1, timeout=60_000)
    expect(ignored).to_contain_text("order.paid")
    expect(ignored).to_contain_text("已忽略")
    expect(ignored).to_contain_text("旅程结束后才到达")
    expect(timeline.locator(".tf-preview-status")).to_have_text("已退出")  # the status, in words
    expect(timeline.locator(".tf-preview-status")).to_have_attribute("data-status", "exited")
    expect(timeline.locator(".error")).to_have_count(0)
    kit.screenshot(page, "preview-ignored")
    assert errors == []


# -- the ticket console ----------------------------------------------------------------------------------------


def _refund_from_a_shop(db_url: str, refund_id: str, phone: str) -> int:
    ingest.store(ingest.EventIn(id=f"shop-{refund_id}", type="refund.requested", source="youzan",
                                customer={"phone": phone}, occurred_at=datetime.now(UTC),
                                profile={"name": "陈静"},
                                payload={"refund_id": refund_id, "order_id": "YZ-7", "shop": "flagship",
                                         "channel": "youzan", "amount_fen": 12900, "reason": "尺码不合适"}), db_url)
    with session_factory(db_url)() as db:
        found = db.scalar(select(models.Ticket.id).where(models.Ticket.refund_id == refund_id))
        assert found is not None
        return int(found)


def test_the_console_says_where_a_reply_goes_and_what_became_of_it(live_server: kit.LiveServer, page: Page) -> None:
    db_url, base = live_server.database_url, live_server.url
    kit.add_user(db_url, "amy", "agent", display_name="Amy 坐席")
    with transaction(db_url) as db:
        amy = db.scalar(select(models.User.id).where(models.User.username == "amy"))
        db.add(models.Agent(user_id=amy, groups=["default"], skills=[], availability="online", working_hours={},
                            contact={}))
    tid = _refund_from_a_shop(db_url, "RF-1", "13800138000")

    # the queue: claiming keeps the row in place and marks it mine
    kit.login(page, base, "amy", next_path="/tickets")
    row = page.locator(f"#tk-row-{tid}")
    expect(row).to_contain_text("未分配")
    row.get_by_role("button", name=f"认领 #{tid}").click()
    expect(row.locator("[data-assignee]")).to_have_text("我")
    expect(row).to_be_visible()
    expect(row.get_by_role("button", name=f"认领 #{tid}")).to_have_count(0)
    expect(page.locator("#tickets tbody tr")).to_have_count(1)

    # the ticket: the customer's own channel (a phone: SMS, not WeCom), and it is not set up — said before writing
    row.get_by_role("link", name=f"#{tid}").click()
    expect(page.locator('#tk-facts [data-channel="sms"]')).to_have_text("短信")
    warning = page.locator("#reply-reach")
    expect(warning).to_contain_text("短信渠道还没有配置")
    page.locator("#reply-body").fill("陈女士您好，退款已受理。")
    page.locator("#reply-form").get_by_role("button", name="记录回复（不会送达）").click()
    expect(page.locator("#tk-delivery-warning")).to_contain_text("没有发给客户：渠道未配置")
    expect(page.locator(".notice")).to_have_count(0)  # no "已回复客户"
    expect(page.locator('#timeline [data-delivery="not_configured"]')).to_contain_text("渠道未配置")
    kit.screenshot(page, "ticket-reply-not-sent")

    # everyone away: a new refund waits in the queue; amy comes online and it is offered to her
    page.locator("#tk-avail").get_by_role("button", name="离开").click()
    expect(page.locator('#tk-avail button[value="away"]')).to_have_attribute("aria-pressed", "true")
    queued = _refund_from_a_shop(db_url, "RF-2", "13900139000")
    with transaction(db_url) as db:
        ticket = service.get_ticket(db, queued, lock=True)
        assert service.assign(db, ticket, utcnow()).user_id is None  # the flow's assign step: nobody online
    page.goto(f"{base}/tickets")
    expect(page.locator(f"#tk-row-{queued} [data-assignee]")).to_contain_text("未分配")
    page.locator("#tk-avail").get_by_role("button", name="在线").click()
    expect(page.locator("#tk-offered")).to_contain_text("1 张工单")
    expect(page.locator(f"#tk-row-{queued} [data-assignee]")).to_have_text("我")  # the list refreshed itself


# -- downloads ---------------------------------------------------------------------------------------------------


def _downloaded_bytes(page: Page, click: Any) -> tuple[str, bytes]:
    with page.expect_download() as info:
        click()
    download = info.value
    path = download.path()
    assert path is not None
    return download.suggested_filename, Path(path).read_bytes()


def _downloaded(page: Page, click: Any) -> tuple[str, str]:
    name, data = _downloaded_bytes(page, click)
    return name, data.decode("utf-8-sig")


def test_every_download_and_export_link_gives_its_file(live_server: kit.LiveServer, page: Page,
                                                        chromium: Browser) -> None:
    db_url, base = live_server.database_url, live_server.url
    kit.add_user(db_url, "fin", "finance")
    kit.add_user(db_url, "root", "admin")
    kit.add_user(db_url, "olive", "ops")
    with transaction(db_url) as db:
        flowsvc.save_draft(db, json.loads((FLOWS / "store-monthly-settlement.json").read_text(encoding="utf-8")),
                           "fin")
        flowsvc.publish(db, "store-monthly-settlement", "fin")
        order(db, "o1", 1000000, "2026-10-03 10:00", store="S001")
        order(db, "o2", 333333, "2026-10-15 10:00", store="S004")

    # finance settles October on the dashboard, then downloads the run's and a statement's CSV
    kit.login(page, base, "fin", next_path="/settlement")
    page.locator('select[name="flow_id"]').select_option("store-monthly-settlement")
    page.locator('input[name="start"]').fill("2026-10-01")
    page.locator('input[name="end"]').fill("2026-10-31")
    page.locator('form[action="/settlement/run"] button[type=submit]').click()
    run_link = page.get_by_role("link", name="下载 CSV").first
    expect(run_link).to_be_visible()
    name, text = _downloaded(page, run_link.click)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert name.startswith("statements-run") and {r["结算方"] for r in rows} == {"S001", "S004"}  # finance's words
    with session_factory(db_url)() as db:
        s001 = db.scalar(select(models.Statement.id).where(models.Statement.party == "S001"))
    page.goto(f"{base}/settlement/statements/{s001}")
    name, text = _downloaded(page, page.get_by_role("link", name="下载 CSV").click)  # was a raw 422
    assert name == f"statement-{s001}.csv"
    lines = list(csv.DictReader(io.StringIO(text)))
    assert {r["结算方"] for r in lines} == {"S001"} and any(r["金额（元）"] == "500.00" for r in lines)
    page.locator('button[value="approved"]').first.click()
    # the statement page again, as the server answers once it is approved: no decision form, the correction form
    expect(page.locator("#adjust")).to_be_visible()
    expect(page.locator("#decide")).to_have_count(0)

    # the admin exports the audit log, filtered
    page.context.close()
    page = kit.new_page(chromium)
    kit.login(page, base, "root", next_path="/audit?action=statement.")
    expect(page.locator("#audit tbody tr[data-action='statement.approved']")).to_have_count(1)
    name, text = _downloaded(page, page.locator("#audit-export").click)
    exported = list(csv.DictReader(io.StringIO(text)))
    assert name.startswith("audit-") and [r["action"] for r in exported] == ["statement.approved"]
    assert json.loads(exported[0]["after"])["status"] == "approved" and exported[0]["actor"] == "fin"

    # ops export a decision table as DMN from the canvas
    table = {"name": "退款路由", "hit_policy": "FIRST",
             "inputs": [{"id": "amount", "label": "金额", "expression": "ticket.refund_amount", "type_ref": "number"}],
             "outputs": [{"id": "queue", "name": "queue", "type_ref": "string"}],
             "rules": [{"id": "big", "input_entries": [">= 5000"], "output_entries": ['"risk"']},
                       {"id": "rest", "input_entries": ["-"], "output_entries": ['"standard"']}]}
    with transaction(db_url) as db:
        flowsvc.save_draft(db, {"schema": "tideflow/flow@1", "id": "refund-routing", "name": "退款工单路由",
                                "kind": "ticket",
                                "nodes": [{"id": "start", "type": "trigger.event",
                                           "config": {"event": "ticket.created"}, "ui": {"x": 60, "y": 120}},
                                          {"id": "route", "type": "logic.decision_table",
                                           "config": {"table": table, "port_output": "queue"},
                                           "ui": {"x": 320, "y": 120}}],
                                "edges": [{"from": "start", "to": "route"}]}, "olive")
    page.context.close()
    page = kit.new_page(chromium)
    kit.login(page, base, "olive", next_path="/flows/refund-routing/edit")
    page.locator('.drawflow-node[data-tf="route"]').click()
    form = page.locator('form.tf-form[data-node="route"]')
    name, text = _downloaded(page, form.locator("[data-dmn-export]").click)
    page.context.close()
    assert name.endswith(".dmn") and "<definitions" in text and "&gt;= 5000" in text and "risk" in text

    # a marketer downloads a channel code's QR code (PNG, SVG) and its poster
    kit.add_user(db_url, "mia", "marketer")
    with transaction(db_url) as db:
        db.add(GrowthChannel(key="store-poster", name="门店海报", state="tfc:1", config_id="cfg-1",
                             qr_url="https://wework.qpic.cn/wwpic/store-poster", staff=["zhangsan"]))
    page = kit.new_page(chromium)
    kit.login(page, base, "mia", next_path="/growth/channels/store-poster")
    for label, suffix, magic in (("PNG", ".png", b"\x89PNG"), ("SVG", ".svg", b"<"), ("海报", ".png", b"\x89PNG")):
        name, data = _downloaded_bytes(page, page.get_by_role("link", name=label, exact=True).click)
        assert name.startswith("store-poster") and name.endswith(suffix) and data.startswith(magic), (label, name)
        if suffix == ".svg":
            assert b"<svg" in data
    page.context.close()
