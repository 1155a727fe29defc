"""Order sync by polling with the jd connector against a loopback JOS routerjson: a window too large to
page through is halved; the same phone in a Taobao order and a JD order is one customer."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from connectors.jd import connector as jd_connector
from engine import shop_sync
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.jd_sync_kit import NOW, SHOP, configure_jd, jos
from tests.connectors.shop_platforms import (
    TOP_APP_KEY,
    TOP_SECRET,
    TOP_SESSION,
    FakeJos,
    FakeTop,
    jd_apply,
    jd_order,
    parse_cst,
    top_trade,
)
from tests.connectors.taobao_sync_kit import configure, counts, polled_kinds

__all__ = ["jos", "polled_kinds"]


def test_a_window_with_more_refunds_than_the_api_pages_through_is_halved(
        db_url: str, jos: FakeJos, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jd_connector, "REFUND_MAX_PAGES", 1)  # JOS pages at most 100 × 50; here 1 × 50
    configure_jd(db_url, jos)
    jos.applies.extend(jd_apply(7000 + i, 300000 + i, NOW - timedelta(seconds=20 * i + 5)) for i in range(60))

    result = shop_sync.poll_connector(db_url, SHOP, now=NOW)

    orders, refunds, _returns = result.streams
    assert orders.accepted == 0 and refunds.accepted == 60 and refunds.duplicates == 0
    assert counts(db_url)["refunds"] == 60 and shop_sync.cursor_position(db_url, SHOP, "refunds") == NOW
    spans = {parse_cst(p["applyTimeEnd"]) - parse_cst(p["applyTimeStart"])
             for c in jos.calls_of("jingdong.pop.afs.soa.refundapply.queryPageList")
             for p in [json.loads(c["360buy_param_json"])] if "applyTimeStart" in p}
    assert max(spans) == timedelta(hours=1, minutes=2) and min(spans) < timedelta(minutes=32)


def test_the_same_phone_in_a_taobao_and_a_jd_order_is_one_customer(db_url: str, jos: FakeJos) -> None:
    with FakeTop() as top:
        assert isinstance(top, FakeTop)
        configure(db_url, "tb-shop", "taobao", {"app_key": TOP_APP_KEY, "shop": "tb-shop", "gateway_url": top.url,
                                                "backfill_hours": 1, "refunds": False},
                  {"app_secret": TOP_SECRET, "session_key": TOP_SESSION})
        configure_jd(db_url, jos, refunds=False)
        top.trades.append(top_trade(2231958349, NOW - timedelta(minutes=5), mobile="13800138000"))
        jos.orders.append(jd_order(300123456789, NOW - timedelta(minutes=3), mobile="138 0013 8000"))
        jos.orders.append(jd_order(300123456790, NOW - timedelta(minutes=2), buyer="o-JD-other", mobile="13700000000"))

        shop_sync.poll_connector(db_url, "tb-shop", now=NOW)
        shop_sync.poll_connector(db_url, SHOP, now=NOW)

    with session_factory(db_url)() as db:
        orders = {o.order_id: o.customer_id for o in db.scalars(select(models.Order))}
        identities = {(i.kind, i.value): i.customer_id for i in db.scalars(select(models.Identity))}
    assert orders["2231958349"] == orders["300123456789"] != orders["300123456790"]
    same = orders["2231958349"]
    assert identities[("phone", "+8613800138000")] == identities[("taobao_buyer", "AAHk5d-EAAeGwJedwSFu0XXX")] \
        == identities[("jd_buyer", "o-JD-buyer-5f2a")] == same
    assert counts(db_url)["customers"] == 2


def test_every_documented_refund_status_and_the_after_sale_returns_are_synced(db_url: str, jos: FakeJos) -> None:
    """refundapply statuses 0–11, 16–19 and 27 (JOS docs) each map; an undocumented one and an exchange
    service are kept raw as unmapped, never dropped; returns (售后服务单) arrive from jingdong.asc.query.list."""
    from engine import connector_ops
    from tests.connectors.shop_platforms import cst

    configure_jd(db_url, jos, vender_id="10088")
    documented = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 27]
    jos.applies.extend(jd_apply(8000 + status, 400000 + status, NOW - timedelta(minutes=5), status)
                       for status in [*documented, 42])
    applied = cst(NOW - timedelta(minutes=10))
    buyer = {"openIdBuyer": "jdOpen-9", "customerPin": "jd_pin_9"}
    jos.services += [
        {"serviceId": 6001, "orderId": 500001, "customerExpect": 10, "serviceStatus": 10005, "applyTime": applied,
         **buyer, "questionDesc": "尺码不合适"},
        {"serviceId": 6002, "orderId": 500002, "customerExpect": 11, "serviceStatus": 10010, "applyTime": applied,
         "approveTime": cst(NOW - timedelta(minutes=3)), **buyer},
        {"serviceId": 6003, "orderId": 500003, "customerExpect": 20, "serviceStatus": 10001, "applyTime": applied,
         **buyer},  # an exchange: no refund
    ]
    result = shop_sync.poll_connector(db_url, SHOP, now=NOW)
    _orders, refunds, returns = result.streams
    assert refunds.accepted == len(documented) and refunds.unmapped == 1
    with session_factory(db_url)() as db:
        types = {e.payload["refund_id"]: e.type for e in db.scalars(select(models.EventRecord))}
        total, by_kind, _ = connector_ops.unmapped(db, SHOP)
    statuses = {int(refund_id) - 8000: kind.removeprefix("refund.") for refund_id, kind in types.items()
                if not refund_id.startswith("asc-")}
    assert statuses == {0: "requested", 1: "completed", 2: "rejected", 3: "completed", 4: "rejected",
                        5: "completed", 6: "completed", 7: "requested", 8: "requested", 9: "completed",
                        10: "requested", 11: "rejected", 16: "completed", 17: "requested", 18: "rejected",
                        19: "requested", 27: "requested"}
    assert types["asc-6001"] == "refund.requested" and types["asc-6002"] == "refund.completed"
    assert returns.accepted == 2 and (total, by_kind) == (2, {"refundapply:42": 1, "asc:20": 1})
    calls = [json.loads(c["360buy_param_json"]) for c in jos.calls_of("jingdong.asc.query.list")]
    assert {c["buId"] for c in calls} == {"10088"} and any("approveTimeBegin" in c for c in calls)
