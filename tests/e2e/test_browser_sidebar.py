"""The chat sidebar in real Chromium, as WeCom opens it: signed in through WeCom's OAuth (the fake's authorize
page), the real vendored @wecom/jssdk running against a stand-in for the WeCom client (tests/e2e/wecom_client.py)
whose config/agentConfig check is the fake WeCom's own signature check; the customer's picture, the approved
compliance script suggested for the customer's question, one tap sending it, actions through the web app's API
(tag, coupon, ticket; enrolment in a flow with a real Temporal behind the app, answer and audit record checked).
Narrow desktop pane and a phone; an old client (config + agentConfig) and a new one (agentConfig only).
Saves docs/screenshots/sidebar.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from activities.sidebar import library, staff
from activities.sidebar.scripts import ScriptSpec
from activities.sidebar.suggestions import RuleSpec
from connectors.wecom import jsapi
from connectors.wecom.jsapi import reset_shared_apps
from engine import connectors, flows
from engine.customers import resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from engine.db.sidebar_models import ScriptUse
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, serve
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID, expire_all
from tests.e2e import browser as kit
from tests.e2e import wecom_client
from tests.waiting import wait_until

pytestmark = pytest.mark.browser
CONTACT = "wmSidebarCustomer01"
DISCLOSURE = "{{ customer.name }}您好：理财产品的历史收益率不代表未来表现，投资需谨慎。"


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    reset_shared_apps()
    yield from serve(FakeWeCom())
    reset_shared_apps()


def _world(database_url: str, fake: FakeWeCom) -> str:
    """The WeCom connector (against the fake), staff, a customer who just asked about yields, the library."""
    kit.add_user(database_url, "root", "admin")
    kit.add_user(database_url, "lina", "agent", display_name="李娜")
    kit.add_user(database_url, "mk", "marketer")
    kit.add_user(database_url, "zhao", "ops")
    now = utcnow()
    with transaction(database_url) as db:
        connectors.save(db, "wecom-main", "wecom", "企业微信", {
            "corp_id": WECOM_CORP_ID, "agent_id": SIDEBAR_AGENT_ID, "api_base": fake.url, "oauth_base": fake.url},
            {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        users = {u.username: u for u in db.query(models.User)}
        staff.link(db, users["root"], "wecom-main", "lina.wecom", "lina", now)
        db.add(models.Agent(user_id=users["lina"].id, groups=["wealth"], skills=[], contact={}))
        cid = resolve(db, {"wecom_external_userid": CONTACT, "phone": "13800138000"}, "王小明")
        db.add(models.Message(idempotency_key="in-1", customer_id=cid, channel="wecom", direction="in",
                              content="请问这款理财的年化收益率是多少？", status="received",
                              created_at=now - timedelta(minutes=2)))
        # lina works this customer's ticket in her group: the read policy lets her read them in clear
        db.add(models.AgentGroup(key="wealth", name="理财"))
        db.add(models.TicketType(key="consult", name="咨询", fields=[]))
        db.flush()
        db.add(models.Ticket(type_key="consult", subject="理财咨询", customer_id=cid, group_key="wealth",
                             status="resolved"))
        db.add(models.Order(channel="tmall", shop="flagship", order_id="T1001", source="taobao", customer_id=cid,
                            status="paid", amount_fen=19900, paid_at=now - timedelta(days=3)))
        db.add(models.CouponCampaign(id="vip-50", name="VIP 立减50元", value_fen=5000, status="active"))
        greet = library.create_script(db, users["mk"], ScriptSpec(title="问候", text="{{ customer.name }}您好"), now)
        disclosure = library.create_script(db, users["mk"], ScriptSpec(
            title="收益率风险提示", text=DISCLOSURE, keywords=["收益率"], requires_approval=True), now)
        library.review_script(db, users["zhao"], disclosure.id, 1, True, "合规已审", now)
        library.create_rule(db, users["mk"], RuleSpec(name="问收益率", keywords=["收益率", "年化"],
                                                      script_ids=[disclosure.id], priority=10), now)
        assert greet.id
    fake.client_user = "lina.wecom"
    return cid


def _open(chromium: Browser, fake: FakeWeCom, *, mobile: bool, version: str) -> tuple[Page, wecom_client.WeComClient]:
    size = {"width": 375, "height": 740} if mobile else {"width": 360, "height": 820}
    context = chromium.new_context(viewport=size, locale="zh-CN", user_agent=wecom_client.user_agent(version, mobile),
                                   extra_http_headers={"Accept-Language": "zh-CN"}, is_mobile=mobile,
                                   has_touch=mobile)
    context.set_default_timeout(15_000)
    client = wecom_client.install(context, fake, corp_id=WECOM_CORP_ID, agent_id=SIDEBAR_AGENT_ID,
                                  external_userid=CONTACT)
    return context.new_page(), client


def test_a_member_opens_the_sidebar_and_sends_the_approved_disclosure(
        live_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom) -> None:
    cid = _world(live_server.database_url, fake)
    page, client = _open(chromium, fake, mobile=False, version="4.1.22")
    try:
        page.goto(live_server.url + "/sidebar")  # → WeCom's authorize page → /sidebar/oauth → /sidebar
        expect(page.locator("#sb-name")).to_have_text("王小明")
        assert page.url == live_server.url + "/sidebar"
        assert fake.calls("auth/getuserinfo") and client.refused == []
        assert page.evaluate("window.__wecomClient.calls")[:2] == ["agentConfig", "getContext"]
        # masked identities, both-direction facts, the customer's question and the suggestion with its reason
        expect(page.locator(".sb-facts")).to_contain_text("138****8000")
        expect(page.locator("body")).not_to_contain_text("13800138000")
        expect(page.locator(".sb-latest")).to_contain_text("年化收益率")
        expect(page.locator("#sb-orders")).to_contain_text("天猫 · flagship · ¥199.00 已付款")
        first = page.locator("#sb-suggested .sb-script").first
        expect(first).to_contain_text("收益率风险提示")
        expect(first.locator(".sb-why")).to_have_text("推荐原因： 问收益率: 客户提到“收益率”")
        expect(first.locator(".sb-preview")).to_have_text("王小明您好：理财产品的历史收益率不代表未来表现，投资需谨慎。")
        kit.screenshot(page, "sidebar")

        first.locator("button[data-send]").click()
        expect(first.locator(".sb-sent")).to_have_text("已发送到聊天")
        assert client.sent == [{"msgtype": "text", "text": {
            "content": "王小明您好：理财产品的历史收益率不代表未来表现，投资需谨慎。"}}]
        with transaction(live_server.database_url) as db:
            uses = db.query(ScriptUse).all()
            assert [(u.status, u.customer_id, u.version) for u in uses] == [("sent", cid, 1)]

        # search narrows the library to what matches
        page.locator("#sb-q").fill("问候")
        page.locator("#sb-search button").click()
        expect(page.locator("#sb-library .sb-script")).to_have_count(1)

        # actions go through the web app's API: a tag, a coupon, a ticket — each answer shown
        page.locator("#sb-newtag").fill("理财意向")
        page.locator("form[data-action=tag] button").click()
        expect(page.locator("#sb-status")).to_have_text("已添加标签")
        expect(page.locator(".sb-tags")).to_contain_text("理财意向")
        page.locator("form[data-action=coupon] button").click()
        expect(page.locator("#sb-status")).to_have_text("已发放优惠券")
        expect(page.locator("#sb-coupons")).to_contain_text("VIP 立减50元")
        page.locator("form[data-action=coupon] button").click()  # the campaign's per-customer limit holds
        expect(page.locator("#sb-status")).to_contain_text("未发放")
        page.locator("summary", has_text="新建工单").click()
        expect(page.locator("#sb-ts")).to_have_value("客户咨询：请问这款理财的年化收益率是多少？")  # one tap
        page.locator("form[data-action=ticket] button").click()
        expect(page.locator("#sb-status")).to_contain_text("已创建工单 #")
        with transaction(live_server.database_url) as db:
            actions = {a.action for a in db.query(models.AuditEntry)}
        assert {"customer.tags_changed", "coupon.issued", "script.used", "script.sent"} <= actions
    finally:
        page.context.close()


def test_on_a_phone_with_an_old_client_a_refused_send_is_shown_and_recorded(
        live_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(live_server.database_url, fake)
    monkeypatch.setattr(jsapi, "TICKET_RETRY_AFTER", 0.0)
    page, client = _open(chromium, fake, mobile=True, version="3.0.16")
    try:
        page.goto(live_server.url + "/sidebar?lang=en")
        expect(page.locator("#sb-name")).to_have_text("王小明")
        # before 3.0.24 the SDK runs config (corp ticket) and then agentConfig (app ticket): both checked
        assert page.evaluate("window.__wecomClient.calls")[:2] == ["preVerifyJSAPI", "agentConfig"]
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        # WeCom ends the tickets early: the client refuses our cached signature once, the page asks for fresh ones
        expire_all(fake)
        page.reload()
        expect(page.locator("#sb-name")).to_have_text("王小明")
        assert client.refused and all(r.endswith("invalid signature") for r in client.refused)
        client.answer = "fail no permission"
        first = page.locator("#sb-suggested .sb-script").first
        first.locator("button[data-send]").click()
        expect(first.locator(".sb-sent")).to_contain_text("Not sent: sendChatMessage:fail no permission")
        assert client.sent == []
        with transaction(live_server.database_url) as db:
            assert [(u.status, u.error) for u in db.query(ScriptUse)] == [
                ("failed", "sendChatMessage:fail no permission")]
    finally:
        page.context.close()


def test_a_member_nobody_linked_is_told_why(live_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom) -> None:
    _world(live_server.database_url, fake)
    fake.client_user = "stranger"
    page, client = _open(chromium, fake, mobile=False, version="4.1.22")
    try:
        page.goto(live_server.url + "/sidebar")
        expect(page.locator("#sb-why")).to_contain_text("企业微信成员 stranger 未关联 Tideflow 用户")  # in its language
        assert "/sidebar/oauth" in page.url and client.sent == []
    finally:
        page.context.close()


def test_outside_the_wecom_client_the_page_says_where_to_open_it(
        live_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom) -> None:
    _world(live_server.database_url, fake)
    context = chromium.new_context(viewport={"width": 360, "height": 800}, locale="zh-CN")  # a plain browser
    page = context.new_page()
    try:
        page.clock.install()
        page.goto(live_server.url + "/sidebar")  # the fake still signs the member in
        expect(page.locator("#sb-status")).to_have_text("正在获取当前聊天…")
        page.clock.fast_forward(11_000)  # nobody answers the JS-SDK outside WeCom
        expect(page.locator("#sb-status")).to_contain_text("请在企业微信的聊天工具栏中打开侧边栏。")
    finally:
        context.close()



@pytest.fixture
def engine_server(db_url: str, fake: FakeWeCom, cheap_passwords: None) -> Iterator[kit.LiveServer]:
    """The designer with a real Temporal (the time-skipping server and Tideflow's worker, on a loop of their own),
    so an enrolment starts a real journey."""
    from designer.app import create_app
    from tests.e2e.temporal_thread import Temporal

    temporal = Temporal(db_url)
    server = kit.LiveServer(db_url, app=create_app(db_url, client=temporal.env.client))
    server.app.state.settings = server.app.state.settings.model_copy(update={"task_queue": temporal.queue})
    server.start()
    try:
        router = wait_until(lambda: server.app.state.router, 5,
                            "the app's router (its lifespan sets it when uvicorn starts it)", every=0.05)
        router.task_queue = temporal.queue
        yield server
    finally:
        server.stop()
        temporal.stop()


def test_a_marketer_enrols_the_customer_in_a_flow_from_the_sidebar(
        engine_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom) -> None:
    """The enrol form posts to the web app's own /api/flows/{id}/enroll (its role rule: marketers, ops and
    developers, so agents do not see the form); the status line shows the server's answer, the journey appears
    in the customer's list and runs, the audit log records who enrolled whom — and a second enrolment of a
    flow that admits a customer once is answered "not enrolled", and recorded as such."""
    database_url = engine_server.database_url
    cid = _world(database_url, fake)
    with transaction(database_url) as db:
        root = db.query(models.User).filter_by(username="root").one()
        staff.link(db, root, "wecom-main", "mk.wecom", "mk", utcnow())
        flows.save_draft(db, {
            "schema": "tideflow/flow@1", "id": "wealth-followup", "name": "理财回访", "kind": "journey",
            "settings": {"entry": {"reentry": "never"}},
            "nodes": [{"id": "start", "type": "trigger.api", "config": {}},
                      {"id": "tag", "type": "action.tag", "config": {"add": ["理财回访中"]}},
                      {"id": "later", "type": "wait.delay", "config": {"duration": "P7D"}},
                      {"id": "done", "type": "logic.exit", "config": {}}],
            "edges": [{"from": "start", "to": "tag"}, {"from": "tag", "to": "later"},
                      {"from": "later", "to": "done"}]}, "mk")
        flows.publish(db, "wealth-followup", "mk")
    fake.client_user = "mk.wecom"
    page, _client = _open(chromium, fake, mobile=False, version="4.1.22")
    try:
        page.goto(engine_server.url + "/sidebar")
        expect(page.locator("#sb-name")).to_have_text("王**")  # a marketer reads the profile masked
        form = page.locator("form[data-action=enroll]")
        expect(form.locator("#sb-fl option")).to_have_text(["理财回访"])
        form.locator("button").click()
        expect(page.locator("#sb-status")).to_have_text("已加入流程")
        expect(page.locator("#sb-journeys")).to_contain_text("理财回访")  # running, then waiting its 7 days

        def tagged() -> bool:  # the journey runs: its tag node tags the customer
            with transaction(database_url) as db:
                return db.get(models.CustomerTag, (cid, "理财回访中")) is not None

        wait_until(tagged, 10, "the enrolled journey to tag the customer", every=0.1)

        page.locator("form[data-action=enroll] button").click()  # the flow admits a customer once
        expect(page.locator("#sb-status")).to_have_text("未加入：客户已在该流程中或不满足进入条件")
        with transaction(database_url) as db:
            entries = [(a.action, a.actor, a.target, a.detail.get("customer"))
                       for a in db.query(models.AuditEntry).filter(models.AuditEntry.action.like("journey.%"))
                       .order_by(models.AuditEntry.id)]
        assert entries == [("journey.enrolled", "mk", "flow:wealth-followup", cid),
                           ("journey.not_entered", "mk", "flow:wealth-followup", cid)]
    finally:
        page.context.close()


def test_a_sent_script_whose_report_is_lost_says_so_instead_of_inviting_a_second_send(
        live_server: kit.LiveServer, chromium: Browser, fake: FakeWeCom) -> None:
    """The message is in the chat before the page reports it: a report the server did not get is tried again
    (a repeat changes nothing there), and when it never gets through the line says the message was sent and
    not recorded — not 'failed', which would have the member send it to the customer a second time."""
    _world(live_server.database_url, fake)
    page, client = _open(chromium, fake, mobile=False, version="4.1.22")
    refused: list[str] = []
    refuse = {"left": 2}

    def flaky(route: Route) -> None:
        if refuse["left"] > 0:
            refuse["left"] -= 1
            refused.append(route.request.url)
            route.fulfill(status=503, json={"detail": {"message": "the database is busy", "fix": "try again"}})
        else:
            route.continue_()

    try:
        page.route("**/api/sidebar/uses/*", flaky)
        page.goto(live_server.url + "/sidebar")
        first = page.locator("#sb-suggested .sb-script").first
        first.locator("button[data-send]").click()
        expect(first.locator(".sb-sent")).to_have_text("已发送到聊天")  # the third try got through
        assert len(refused) == 2 and len(client.sent) == 1
        with transaction(live_server.database_url) as db:
            assert [u.status for u in db.query(ScriptUse)] == ["sent"]

        refuse["left"] = 99  # now the server never hears of it
        library_item = page.locator("#sb-library .sb-script").first
        library_item.locator("button[data-send]").click()
        sent = library_item.locator(".sb-sent")
        expect(sent).to_contain_text("已发送到聊天 · Tideflow 未能记录此次发送，请勿重复发送： the database is busy")
        expect(sent).to_have_class("sb-sent sent unrecorded")
        assert len(refused) == 5 and len(client.sent) == 2
        with transaction(live_server.database_url) as db:
            assert sorted(u.status for u in db.query(ScriptUse)) == ["rendered", "sent"]  # as the line says
    finally:
        page.context.close()
