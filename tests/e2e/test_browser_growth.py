"""Growth and loyalty in real Chromium on the real stack (``tideflow up`` with its demo flows: Temporal dev
server, worker, web) and the loopback WeCom — one stack for the module's three stories:

1. a marketer makes a channel code on the page; a customer scans it and adds the staff member (a real,
   encrypted add_external_contact callback with State and WelcomeCode) → the channel's welcome goes out
   through send_welcome_msg, the page shows it sent, and the customer's profile names the channel;
2. a three-friend campaign (老带新) made on the page: an inviter joins through the entry code and gets a
   personal code; three new friends and one blocklisted account add through it (and WeCom redelivers a
   callback) → the inviter is rewarded exactly once, the fraudulent invite waits in the review queue and is
   rejected there with a reason;
3. points: a paid order earns, the redeem form spends, a partial refund takes back — the customer page
   shows the balance, lots and ledger.

Saves docs/screenshots/growth-channel.png, growth-campaign.png and loyalty-customer.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from engine.db import models
from engine.db.growth_models import ReferralInvite
from engine.db.session import session_factory
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    FakeWeCom,
    serve,
    wecom_callback,
)
from tests.e2e import browser as kit
from tests.e2e.stack import E2EStack
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # e2e: it starts the stack as subprocesses


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeCom]:
    yield from serve(FakeWeCom())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake: FakeWeCom) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("growth")) as running:
        running.up(demo=True)
        running.api("PUT", "/api/connectors/wecom-main", expect=(200, 201), json={
            "kind": "wecom", "name": "企业微信", "settings": {"corp_id": WECOM_CORP_ID, "agent_id": 1000002,
                                                            "api_base": fake.url, "rate_limit_per_second": 50},
            "secrets": {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET}})
        yield running


def push(stack: E2EStack, xml: str) -> None:
    """WeCom POSTs the encrypted callback to the connector's hook, and posts it again when told it is busy
    (admission control answers 503 with Retry-After when the stack is behind, as on a loaded CI machine)."""
    signed = wecom_callback(xml)
    answer = stack.request("POST", signed.url("/hooks/wecom-main"), content=signed.body,
                           headers={"Content-Type": "text/xml"})
    assert answer.status_code == 200 and answer.text == "success", answer.text


def login(page: Page, stack: E2EStack, path: str) -> None:
    creds = stack.credentials()
    kit.login(page, stack.base_url, creds["username"], creds["password"], next_path=path)


def scalar(stack: E2EStack, query: Any) -> Any:
    with session_factory(stack.database_url)() as db:
        return db.scalar(query)


def test_a_channel_code_attributes_the_customer_and_sends_its_welcome(stack: E2EStack, fake: FakeWeCom,
                                                                      page: Page) -> None:
    login(page, stack, "/growth/channels")
    form = page.locator("#new-channel")
    form.locator("#c-name").fill("门店A 收银台")
    form.locator("#c-key").fill("store-a")
    form.locator("#c-staff").fill("zhangsan")
    form.locator("#c-tags").fill("门店A")
    form.locator("#c-welcome").fill("欢迎光临门店A，{{ customer.name }}！")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator(".notice")).to_contain_text("门店A 收银台")
    expect(page.locator("#qr")).to_be_visible()
    state = page.locator("#state").inner_text()
    way = next(w for w in fake.contact_ways.values() if w["state"] == state)
    assert way["user"] == ["zhangsan"]

    xml, member, code = fake.scan_and_add(way["config_id"], "wmE2EChannel01", name="王小明")
    assert code and member == "zhangsan"
    push(stack, xml)
    wait_until(lambda: [d for d in fake.delivered if d[0] == "wmE2EChannel01"], 60, "the channel's welcome")
    assert fake.delivered[-1][1:3] == ("welcome", "欢迎光临门店A，王小明！")

    # delivered, then marked sent in its own transaction: until then the page truly says 发送中
    def marked_sent() -> bool:
        page.goto(f"{stack.base_url}/growth/channels/store-a")
        return "已发送" in page.locator("#adds").inner_text()

    wait_until(marked_sent, 30, "the welcome marked sent on the channel page")
    expect(page.locator("#fig-adds")).to_have_text("1")
    kit.screenshot(page, "growth-channel")
    page.locator("#adds a").first.click()
    expect(page.locator("h1")).to_contain_text("王小明")
    expect(page.locator("body")).to_contain_text("first_touch_channel")
    expect(page.locator("body")).to_contain_text("store-a")
    expect(page.locator("#tags")).to_contain_text("门店A")
    assert fake.problems == []


def test_a_three_friend_campaign_rewards_once_and_queues_the_fraud(stack: E2EStack, fake: FakeWeCom,
                                                                    page: Page) -> None:
    # the campaign the shipped 老带新 flows name, made on the page; the reward's coupon campaign and entry code
    stack.api("POST", "/api/coupon-campaigns", expect=201, json={"id": "referral-30", "name": "裂变 30 元券",
                                                                  "value": "30.00", "total_stock": 100})
    entry = stack.api("POST", "/api/growth/channels", expect=201, json={
        "key": "laodaixin-entry", "name": "老带新入口", "staff": ["zhangsan"]})
    stack.api("POST", "/api/growth/blocklist", expect=201, json={"kind": "wecom_external_userid",
                                                                  "value": "wmE2EFarm0001", "reason": "薅羊毛"})
    login(page, stack, "/growth/campaigns")
    now = datetime.now(UTC).astimezone()
    form = page.locator("#new-campaign")
    form.locator("#p-name").fill("老带新：邀请 3 位好友得 30 元券")
    form.locator("#p-id").fill("laodaixin")
    form.locator("#p-start").fill((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    form.locator("#p-end").fill((now + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    form.locator("#p-staff").fill("lisi")
    form.locator("#p-budget").fill("10")
    form.locator("#p-min").fill("")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("#campaign-status")).to_have_text("进行中")

    push(stack, fake.scan_and_add(entry["config_id"], "wmE2EInviter1", name="老王")[0])
    personal = wait_until(lambda: next((w for w in fake.contact_ways.values() if w["state"].startswith("tfr")), None),
                          60, "the inviter's personal code")
    assert personal["user"] == ["lisi"]
    for n in range(3):
        push(stack, fake.scan_and_add(personal["config_id"], f"wmE2EFriend{n:04d}", name=f"朋友{n}",
                                      avatar="https://wework.qpic.cn/a.png")[0])
    fraud = fake.scan_and_add(personal["config_id"], "wmE2EFarm0001", name="羊毛党", avatar="https://a/b.png")[0]
    push(stack, fraud)
    push(stack, fraud)  # WeCom redelivers: one event, one invite

    inviter = scalar(stack, select(models.Identity.customer_id).where(
        models.Identity.value == "wmE2EInviter1"))
    coupons = select(func.count()).select_from(models.Coupon).where(models.Coupon.customer_id == inviter,
                                                                    models.Coupon.campaign_id == "referral-30")
    wait_until(lambda: scalar(stack, coupons) == 1, 90, "the reward coupon")
    told = wait_until(lambda: [t for (ext, _how, t, _a) in fake.delivered if ext == "wmE2EInviter1" and "券码" in t],
                      60, "the reward message")
    assert len(told) == 1

    page.goto(f"{stack.base_url}/growth/campaigns/laodaixin")
    expect(page.locator("#leaderboard")).to_contain_text("老王")
    expect(page.locator("#leaderboard")).to_contain_text("已发放")
    expect(page.locator('#funnel tr[data-step="valid"] td.num')).to_have_text("3")
    expect(page.locator('#funnel tr[data-step="in_review"] td.num')).to_have_text("1")
    row = page.locator("#review-queue tbody tr").first
    expect(row).to_contain_text("黑名单")
    kit.screenshot(page, "growth-campaign")
    row.locator("input[name=reason]").fill("黑名单账号")
    with page.expect_navigation():
        row.locator("button[value=reject]").click()
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("#review-queue")).to_contain_text("没有待审核的邀请")
    assert scalar(stack, coupons) == 1  # still one reward
    assert scalar(stack, select(func.count()).select_from(ReferralInvite)) == 4
    assert scalar(stack, select(models.AuditEntry.detail).where(
        models.AuditEntry.action == "referral.invite_rejected"))["reason"] == "黑名单账号"
    assert fake.problems == []


def test_points_earned_redeemed_and_refunded_show_on_the_customer_page(stack: E2EStack, page: Page) -> None:
    program = stack.api("GET", "/api/loyalty/program")
    stack.api("PUT", "/api/loyalty/program", json={**program, "enabled": True})
    customer = {"phone": "13800138123"}
    sent = stack.api("POST", "/api/events", expect=202, json={
        "id": "loyalty-e2e-paid", "type": "order.paid", "customer": customer, "profile": {"name": "积分会员"},
        "payload": {"order_id": "LE-1", "amount_fen": 50_000}})
    cid = sent["customer_id"]
    login(page, stack, f"/customers/{cid}")
    expect(page.locator("#points-balance")).to_have_text("500")
    form = page.locator("#redeem")
    form.locator("#redeem-points").fill("200")
    form.locator("#redeem-reason").fill("保温杯")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("#points-balance")).to_have_text("300")
    stack.api("POST", "/api/events", expect=202, json={
        "id": "loyalty-e2e-refund", "type": "refund.completed", "customer": customer,
        "payload": {"order_id": "LE-1", "refund_id": "LR-1", "amount_fen": 20_000}})
    page.reload()
    expect(page.locator("#points-balance")).to_have_text("100")  # floor(500 × 200/500) = 200 taken back
    ledger = page.locator("#points-ledger")
    expect(ledger.locator("tr[data-kind=earn]")).to_have_count(1)
    expect(ledger.locator("tr[data-kind=burn]")).to_have_count(1)
    expect(ledger.locator("tr[data-kind=reverse]")).to_contain_text("-200")
    expect(page.locator("#points-lots")).to_contain_text("500")
    kit.screenshot(page, "loyalty-customer")
    assert Path(kit.SCREENSHOTS / "loyalty-customer.png").exists()
