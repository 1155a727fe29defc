"""End to end on Temporal's time-skipping server: a Tmall shop (a loopback TOP router) has a paid order →
the shop-sync workflow polls once → the canonical ``order.paid`` event is stored, lands in ``orders`` and
starts a published journey whose text reaches a loopback SMS gateway.

:class:`ShopStack` and the ``shop_stack`` fixture are reused by tests/connectors/test_jd_e2e.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine import connectors as configured
from engine import shop_sync
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.shop_e2e_kit import ShopStack, gateway, shop_kinds, shop_stack
from tests.connectors.shop_platforms import TOP_APP_KEY, TOP_SECRET, TOP_SESSION, FakeTop, top_trade
from tests.waiting import until

__all__ = ["gateway", "shop_kinds", "shop_stack"]  # fixtures


async def test_a_paid_tmall_order_is_polled_stored_booked_and_starts_a_journey(
        shop_stack: ShopStack, gateway: Loopback) -> None:
    with FakeTop() as top:
        assert isinstance(top, FakeTop)
        top.trades.append(top_trade(2231958349, datetime.now(UTC) - timedelta(minutes=1), payment="129.00",
                                    mobile="13800138000"))
        await shop_stack.configure("tmall-flagship", "taobao", {
            "app_key": TOP_APP_KEY, "shop": "tmall-flagship", "shop_type": "tmall", "gateway_url": top.url,
            "backfill_hours": 1}, {"app_secret": TOP_SECRET, "session_key": TOP_SESSION})
        await shop_stack.configure_sms(gateway)
        await shop_stack.publish("paid-thanks", "order.paid", "sms", "感谢在天猫下单！订单 "
                                 "{{ event.payload.order_id }} 实付 {{ event.payload.amount_fen }} 分")

        stored = await shop_stack.sync_once("tmall-flagship")
        assert stored.external_id == "tmall:tmall-flagship:2231958349:paid" and stored.customer_id
        assert stored.identities == {"taobao_buyer": "AAHk5d-EAAeGwJedwSFu0XXX", "phone": "13800138000"}
        result = await shop_stack.journey_result("paid-thanks", stored.customer_id)
        assert result["status"] == "completed"
        await shop_stack.stop_sync("tmall-flagship")

    [sent] = gateway.requests
    assert sent.json()["mobile"] == "13800138000"
    assert sent.json()["content"] == "感谢在天猫下单！订单 2231958349 实付 12900 分"
    with session_factory(shop_stack.db_url)() as db:
        [order] = db.scalars(select(models.Order)).all()
        event = db.scalar(select(models.EventRecord).where(models.EventRecord.id == stored.id))
    assert (order.channel, order.shop, order.order_id, order.status, order.amount_fen, order.customer_id) == (
        "tmall", "tmall-flagship", "2231958349", "paid", 12900, stored.customer_id)
    assert event is not None and event.status == "routed"
    assert shop_sync.cursor_position(shop_stack.db_url, "tmall-flagship", "orders") is not None


async def test_a_refused_session_is_not_hammered_and_disabling_the_connector_ends_its_sync(
        shop_stack: ShopStack, time_env: Any) -> None:
    with FakeTop() as top:
        assert isinstance(top, FakeTop)
        await shop_stack.configure("tb-stale", "taobao", {"app_key": TOP_APP_KEY, "shop": "tb-stale",
                                                          "gateway_url": top.url},
                                   {"app_secret": TOP_SECRET, "session_key": "expired-session-key"})
        assert await shop_sync.ensure_running(shop_stack.client, shop_stack.db_url, shop_stack.queue) == ["tb-stale"]
        await until(lambda: top.calls, "the refused session's first call to the TOP gateway", timeout=30)
        with transaction(shop_stack.db_url) as db:
            configured.save(db, "tb-stale", "taobao", "tb-stale", {"app_key": TOP_APP_KEY, "shop": "tb-stale",
                                                                   "gateway_url": top.url}, None, enabled=False)
        await time_env.sleep(shop_sync.REJECTED_PAUSE + timedelta(minutes=1))  # the pause after a refusal
        handle = shop_stack.client.get_workflow_handle(shop_sync.workflow_id("tb-stale"))
        outcome = await asyncio.wait_for(handle.result(), 60)

    assert outcome.startswith("stopped")
    # refused for good (code 27): one call, no retries of the same poll
    assert [c["method"] for c in top.calls] == ["taobao.trades.sold.increment.get"]
    failures = [e for e in (await handle.fetch_history()).events
                if e.HasField("activity_task_failed_event_attributes")]
    [failed] = failures
    assert "ShopApiRejected" in str(failed.activity_task_failed_event_attributes.failure)
    assert "expired-session-key" not in str(failed.activity_task_failed_event_attributes.failure)
