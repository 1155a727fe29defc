"""The connectors page's sync status in real Chromium: a Tmall shop synced from a loopback TOP router (its
message service handed over Taobao's recorded item-stock message, which maps to no order) and a JD shop
whose access token was refused. The admin sees, per connector, the last sync, the cursors and how far
behind they are, the routing backlog, the last error and the unmapped-message count; opens the unmapped
messages (raw, phone numbers masked); resyncs the Tmall shop from a time and sees its cursors move back;
deletes the JD shop, whose cursor rows go with it. Saves docs/screenshots/connectors_sync.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from designer.display import display_zone
from engine import shop_sync
from engine.db import models
from engine.db.session import session_factory
from engine.pii import mask_text
from tests.connectors.jd_sync_kit import configure_jd
from tests.connectors.shop_platforms import FakeJos, FakeTop, top_trade
from tests.connectors.taobao_sync_kit import SHOP, configure_taobao
from tests.e2e import browser as kit

pytestmark = pytest.mark.browser
RECORDED = (Path(__file__).resolve().parents[1] / "connectors" / "fixtures" / "taobao"
            / "tmc_messages_consume_response.json")
JD = "jd-pop"


@pytest.fixture
def platforms() -> Iterator[tuple[FakeTop, FakeJos]]:
    with FakeTop() as top, FakeJos() as jos:
        yield top, jos  # type: ignore[misc]


def cursors(db_url: str, connector_id: str) -> dict[str, datetime]:
    with session_factory(db_url)() as db:
        return {c.stream: c.position for c in db.scalars(select(models.ConnectorCursor).where(
            models.ConnectorCursor.connector_id == connector_id))}


def test_admin_sees_sync_status_resyncs_reads_unmapped_and_deletes(live_server: kit.LiveServer, page: Page,
                                                                   platforms: tuple[FakeTop, FakeJos]) -> None:
    top, jos = platforms
    db_url = live_server.database_url
    now = datetime.now(UTC).replace(microsecond=0)
    configure_taobao(db_url, top, backfill_hours=1, tmc=True)
    top.trades.append(top_trade(4001, now - timedelta(minutes=20), "WAIT_SELLER_SEND_GOODS",
                                mobile="13812345678"))
    # the recorded answer, with a buyer's mobile in its content (as item and logistics messages can carry)
    recorded = json.loads(RECORDED.read_text())
    message = recorded["tmc_messages_consume_response"]["messages"]["tmc_message"][0]
    message["content"] = message["content"][:-1] + ',"receiver_mobile":"13912345678"}'
    top.raw_consume.append(json.dumps(recorded).encode())
    shop_sync.poll_connector(db_url, SHOP, now=datetime.now(UTC))
    configure_jd(db_url, jos)
    jos.fail_next({"error_response": {"code": "19", "zh_desc": "无效access_token", "en_desc": "Invalid access_token"}})
    with pytest.raises(Exception, match="access"):
        shop_sync.poll_connector(db_url, JD, now=datetime.now(UTC))

    kit.add_user(db_url, "ada", "admin")
    kit.login(page, live_server.url, "ada", next_path="/settings/connectors")
    shop = page.locator(f'[data-sync-status="{SHOP}"]')
    expect(shop.locator('[data-fact="last-sync"]')).to_contain_text("中国时间 (GMT+08:00)")  # the workspace's zone
    expect(shop.locator('[data-fact="last-error"]')).to_have_text("无")
    expect(shop.locator('[data-fact="cursors"] [data-stream="orders"]')).to_contain_text("落后")
    expect(shop.locator('[data-fact="backlog"]')).to_contain_text("1 个事件尚未路由到旅程")  # the paid order
    expect(shop.locator('[data-fact="unmapped"]')).to_have_text("1 条未映射的消息")
    refused = page.locator(f'[data-sync-status="{JD}"]')
    expect(refused.locator('[data-fact="last-error"] .error')).to_contain_text("access_token")
    expect(refused.locator('[data-fact="last-sync"]')).to_contain_text("尚未成功同步 · 上次尝试")
    kit.screenshot(page, "connectors_sync")

    # the unmapped message: its topic, why, and the raw text with the mobile masked
    shop.locator('[data-fact="unmapped"] a').click()
    expect(page.locator("h1")).to_contain_text(SHOP)
    row = page.locator('tr[data-message="7104300007405429232"]')
    expect(row).to_contain_text("taobao_item_ItemStockChanged")
    expect(row).to_contain_text("主题 taobao_item_ItemStockChanged 不产生订单或退款事件")  # the kept reason, translated
    expect(row.locator("pre")).to_contain_text("139****5678")
    expect(row.locator("pre")).not_to_contain_text("13912345678")
    assert mask_text("13912345678") == "139****5678"
    # back through the main menu: for an admin, Connectors sits under 更多 (More)
    page.locator("header.top nav.main-nav details.more summary").click()
    page.locator("header.top nav.main-nav details.more a", has_text="连接器").click()

    # resync the shop from a time two days ago (China time): its cursors move there
    since = (now - timedelta(days=2)).astimezone(display_zone()).replace(tzinfo=None)
    page.locator(f"#resync-{SHOP}").fill(since.strftime("%Y-%m-%dT%H:%M:%S"))
    page.locator(f'[data-sync-status="{SHOP}"] form.resync button').click()
    expect(page.locator('p.ok[role="status"]')).to_contain_text("已安排重新同步")
    expect(page.locator(f'[data-sync-status="{SHOP}"] [data-fact="cursors"] [data-stream="orders"]')
           ).to_contain_text("2 天")
    assert set(cursors(db_url, SHOP).values()) == {now - timedelta(days=2)}

    # delete the JD shop: its section and its cursor rows are gone
    assert cursors(db_url, JD)
    page.locator(f"#connector-{JD} form[action$='/delete'] button").click()
    expect(page.locator('p.ok[role="status"]')).to_contain_text("已删除")
    expect(page.locator(f"#connector-{JD}")).to_have_count(0)
    assert cursors(db_url, JD) == {}
