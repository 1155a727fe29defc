"""End to end on Temporal's time-skipping server: a JD POP shop (a loopback JOS routerjson) has a paid
order → the shop-sync workflow polls → ``order.paid`` is stored, lands in ``orders`` and starts a journey
whose text reaches a loopback SMS gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine.db import models
from engine.db.session import session_factory
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.shop_e2e_kit import ShopStack, gateway, shop_kinds, shop_stack
from tests.connectors.shop_platforms import JOS_APP_KEY, JOS_SECRET, JOS_TOKEN, FakeJos, jd_order

__all__ = ["gateway", "shop_kinds", "shop_stack"]  # fixtures


async def test_a_paid_jd_order_is_polled_stored_booked_and_starts_a_journey(
        shop_stack: ShopStack, gateway: Loopback) -> None:
    with FakeJos() as jos:
        assert isinstance(jos, FakeJos)
        jos.orders.append(jd_order(300123456789, datetime.now(UTC) - timedelta(minutes=1), payment="259.80",
                                   mobile="13900139000"))
        await shop_stack.configure("jd-pop", "jd", {
            "app_key": JOS_APP_KEY, "shop": "jd-pop", "gateway_url": jos.url, "backfill_hours": 1},
            {"app_secret": JOS_SECRET, "access_token": JOS_TOKEN})
        await shop_stack.configure_sms(gateway)
        await shop_stack.publish("jd-paid", "order.paid", "sms", "京东订单 {{ event.payload.order_id }} 已付款，"
                                 "共 {{ event.payload.items | length }} 种商品")

        stored = await shop_stack.sync_once("jd-pop")
        assert stored.external_id == "jd:jd-pop:300123456789:paid" and stored.customer_id
        result = await shop_stack.journey_result("jd-paid", stored.customer_id)
        assert result["status"] == "completed"
        await shop_stack.stop_sync("jd-pop")

    [sent] = gateway.requests
    assert sent.json()["mobile"] == "13900139000"
    assert sent.json()["content"] == "京东订单 300123456789 已付款，共 1 种商品"
    with session_factory(shop_stack.db_url)() as db:
        [order] = db.scalars(select(models.Order)).all()
    assert (order.channel, order.shop, order.status, order.amount_fen) == ("jd", "jd-pop", "paid", 25980)
    assert order.items == [{"sku": "CUP-500-WHT", "name": "保温杯 500ml 白色", "quantity": 2, "price_fen": 12990,
                            "category": ""}]
