"""Workforce in real Chromium: the designer served live with a real Temporal (the time-skipping server, so the
24 h takeover and the confirmation polls pass in seconds) and the real worker, the WeCom fake on 127.0.0.1 and
the Finance SDK double.

* a supervisor marks a member departed, sees the plan, executes it, sees the open ticket move at once and
  the customers taken over after the 24 h;
* a marketer syncs the groups, previews the allowance, sends to two groups, sees "waiting for staff
  confirmation" for the owner, then the per-group results after the owner confirms;
* a compliance officer adds a sensitive word, an archived message containing it comes through the SDK double,
  and the hit opens the compliance ticket (and the supervisor's WeCom app message goes out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from activities.tickets import service as tickets
from activities.workforce import chat_archive
from designer.app import create_app
from engine import connectors as configured
from engine.auth import create_user
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, serve
from tests.connectors.finance_sdk_double import FinanceSdkDouble, private_pem
from tests.dbtemplate import migrated_sqlite
from tests.e2e import browser as kit
from tests.e2e.temporal_thread import Temporal
from tests.waiting import wait_until

pytestmark = pytest.mark.browser
CONNECTOR = "wecom-main"
DAY = 86_400


class Corp:
    def __init__(self, root: Path) -> None:
        self.db_url = f"sqlite:///{root / 'workforce.db'}"
        migrated_sqlite(self.db_url)
        self._serving = serve(FakeWeCom())
        self.fake = next(self._serving)
        self.double = FinanceSdkDouble()
        chat_archive.set_sdk_factory(lambda connector_id, settings, secrets: self.double)
        with transaction(self.db_url) as db:
            configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                                "api_base": self.fake.url},
                            {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET,
                             "archive_secret": "archive-secret"})
            db.add(wf.WorkforceSettings(connector_id=CONNECTOR, archive_enabled=True))
            chat_archive.add_key(db, CONNECTOR, 1, private_pem(1), "admin", utcnow())
        for userid in ("zhangsan", "lisi"):
            self.fake.add_staff(userid, f"{userid} 的名字", departments=(7,), direct_leader=("boss",))
        self.fake.add_staff("boss")
        with transaction(self.db_url) as db:
            for userid in ("zhangsan", "lisi"):
                db.add(wf.WeComStaff(connector_id=CONNECTOR, userid=userid, name=userid, departments=[7],
                                     leaders=["boss"], status="active", last_active_at=utcnow() - timedelta(days=2)))
        self.temporal = Temporal(self.db_url)
        self.server = kit.LiveServer(self.db_url, app=create_app(self.db_url, client=self.temporal.env.client))
        # the app's router uses the default task queue: point it at the worker's
        self.server.app.state.settings = self.server.app.state.settings.model_copy(
            update={"task_queue": self.temporal.queue})
        self.server.start()
        router = self.server.app.state.router
        if router is not None:
            router.task_queue = self.temporal.queue

    def customer(self, external: str, owner: str = "zhangsan") -> str:
        self.fake.add_contact(external, owner)
        _status, payload, _ = store(EventIn(id=f"seed-{external}", type="wecom.contact_added",
                                            customer={"wecom_external_userid": external},
                                            profile={"name": f"客户{external[-2:]}",
                                                     "attributes": {"wecom_follow_user": owner}}), self.db_url)
        return str(payload["customer_id"])

    def close(self) -> None:
        self.server.stop()
        self.temporal.stop()
        chat_archive.set_sdk_factory(None)
        with contextlib.suppress(StopIteration):
            next(self._serving)


@pytest.fixture
def corp(tmp_path: Path) -> Iterator[Corp]:
    made = Corp(tmp_path)
    try:
        yield made
    finally:
        made.close()


def wait_router(corp: Corp) -> None:
    router = wait_until(lambda: corp.server.app.state.router, 5,
                        "the app's router (its lifespan sets it when uvicorn starts it)", every=0.05)
    router.task_queue = corp.temporal.queue


def test_a_departed_members_open_ticket_and_customers_move(corp: Corp, page: Page) -> None:
    wait_router(corp)
    c1, _c2 = corp.customer("wmC01"), corp.customer("wmC02")
    with transaction(corp.db_url) as db:
        zs = create_user(db, "zs", kit.PASSWORD, "agent", "张三 坐席")
        ls = create_user(db, "ls", kit.PASSWORD, "agent", "李四 坐席")
        create_user(db, "sup", kit.PASSWORD, "ops", "主管")
        db.add(models.AgentGroup(key="service", name="售后"))
        db.add(models.Agent(user_id=zs.id, groups=["service"], availability="online",
                            contact={"wecom_userid": "zhangsan"}))
        db.add(models.Agent(user_id=ls.id, groups=["service"], availability="online", contact={"wecom_userid": "lisi"}))
        db.add(models.TicketType(key="after-sale", name="售后", default_group="service"))
        db.flush()
        ticket, _ = tickets.create_ticket(db, type_key="after-sale", subject="退货未到账", now=utcnow(), customer_id=c1)
        ticket.assignee_id = zs.id
        ticket_id, ls_id = ticket.id, ls.id
    corp.fake.resign("zhangsan")  # WeCom: he left

    kit.login(page, corp.server.url, "sup", next_path="/workforce")
    row = page.locator('#staff tr[data-userid="zhangsan"]')
    row.locator("summary").click()
    row.locator("select[name=strategy]").select_option("round_robin")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    expect(page.locator("#plan-summary")).to_contain_text("2")
    expect(page.locator('#items tr[data-id="wmC01"]')).to_contain_text("lisi")
    expect(page.locator("h1")).to_contain_text("zhangsan")
    with page.expect_navigation():
        page.locator("#execute").click()
    expect(page.locator("#moved-tickets")).to_contain_text("退货未到账")
    expect(page.locator("#moved-tickets .assignee")).to_contain_text("李四 坐席")
    # the transfer is the handover workflow's call: the page says 发送中 until it has answered
    def waiting() -> bool:
        page.reload()
        return "等待接替" in page.locator('#items tr[data-id="wmC01"] .status').inner_text()

    wait_until(waiting, 30, "the customer waiting for the takeover")
    with session_factory(corp.db_url)() as db:
        assert db.get(models.Ticket, ticket_id).assignee_id == ls_id

    corp.fake.advance(DAY + 120)  # the 24 h pass at WeCom …
    corp.temporal.skip(timedelta(days=1, minutes=5))  # … and on the workflow's timer

    def taken_over() -> bool:
        page.reload()
        return "已接替" in page.locator('#items tr[data-id="wmC01"] .status').inner_text()

    wait_until(taken_over, 30, "the customer taken over (已接替) after the 24 h", every=0.1)
    expect(page.locator("#progress")).to_contain_text("100%")
    assert corp.fake.owner_of("wmC01") == ["lisi"]
    kit.screenshot(page, "workforce-handover")


def test_a_group_mass_send_waits_for_the_owner_then_shows_per_group_results(corp: Corp, page: Page) -> None:
    wait_router(corp)
    corp.customer("wmG01")
    corp.fake.add_group("wrVIP", "zhangsan", "VIP 会员群", members=("wmG01",))
    corp.fake.add_group("wrNEW", "zhangsan", "新品体验群")
    with transaction(corp.db_url) as db:
        create_user(db, "mia", kit.PASSWORD, "marketer", "运营 Mia")
    kit.login(page, corp.server.url, "mia", next_path="/workforce/groups")
    with page.expect_navigation():
        page.locator("#sync-groups").click()
    expect(page.locator("#groups")).to_contain_text("VIP 会员群")
    page.goto(corp.server.url + "/workforce/mass-sends")
    page.locator("input[name=chat_type][value=group]").check()
    page.locator("input[name=chat_ids][value=wrVIP]").check()
    page.locator("input[name=chat_ids][value=wrNEW]").check()
    page.locator("#send-text").fill("周末上新，群内专享 8 折")
    with page.expect_navigation():
        page.locator("#preview").click()
    expect(page.locator("#quota")).to_contain_text("2")  # both groups may still receive this month
    with page.expect_navigation():
        page.locator("#send").click()
    expect(page.locator('#senders tr[data-sender="zhangsan"] .status')).to_contain_text("等待成员确认发送")
    expect(page.locator('#recipients tr[data-recipient="wrVIP"] .status')).to_contain_text("等待成员确认")

    corp.fake.dismiss("wrNEW")
    msgid = next(m for m, task in corp.fake.gstate.tasks.items() if task["chat_type"] == "group")
    corp.fake.confirm(msgid, "zhangsan")  # the owner presses send in the WeCom client
    corp.temporal.skip(timedelta(minutes=11))  # the next poll of the send's results

    def sent() -> bool:
        page.reload()
        return "已发送" in page.locator('#recipients tr[data-recipient="wrVIP"] .status').inner_text()

    wait_until(sent, 30, "the VIP group's send shown as sent (已发送) after the owner confirmed", every=0.1)
    expect(page.locator('#senders tr[data-sender="zhangsan"] .status')).to_contain_text("已确认发送")
    expect(page.locator('#recipients tr[data-recipient="wrNEW"] .status')).to_contain_text("非好友/群已解散")
    expect(page.locator("#recipients")).to_contain_text("VIP 会员群")
    kit.screenshot(page, "workforce-mass-send")


def test_a_sensitive_word_in_an_archived_message_opens_the_alert_ticket(corp: Corp, page: Page) -> None:
    corp.customer("wmS01")
    with transaction(corp.db_url) as db:
        create_user(db, "sup", kit.PASSWORD, "ops", "合规主管")
    kit.login(page, corp.server.url, "sup", next_path="/workforce/compliance")
    page.locator("#team").fill("7")
    page.locator("#list-name").fill("销售禁语")
    page.locator("#direction").select_option("staff")
    with page.expect_navigation():
        page.locator("#new-list button[type=submit]").click()
    section = page.locator("section.word-list").first
    section.locator("input[name=pattern]").fill("保证收益")
    section.locator("select[name=severity]").select_option("high")
    with page.expect_navigation():
        section.locator("button[type=submit]").click()
    expect(section).to_contain_text("保证收益")

    corp.double.text("zhangsan", ["wmS01"], "这款理财保证收益，放心买")  # WeCom archived the chat
    with page.expect_navigation():
        page.locator("#pull-now").click()
    expect(page.locator("#pulled")).to_contain_text("1")
    expect(page.locator("#hits")).to_contain_text("保证收益")
    expect(page.locator("#per-staff")).to_contain_text("zhangsan")
    with page.expect_navigation():
        page.locator("#hits a.ticket-link").first.click()
    expect(page.locator("body")).to_contain_text("保证收益")
    with session_factory(corp.db_url)() as db:
        ticket = db.scalar(select(models.Ticket).where(models.Ticket.type_key == "compliance"))
        assert ticket is not None and ticket.priority == "P2"
    assert any("保证收益" in m["text"] and m["to"] == ["boss"] for m in corp.fake.gstate.app_messages)
    page.goto(corp.server.url + "/workforce/archive?customer_id=" + str(ticket.customer_id))
    expect(page.locator("#watermark")).to_contain_text("合规主管")
    kit.screenshot(page, "workforce-compliance")
