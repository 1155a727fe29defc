"""Order sync by polling with the jd connector against a loopback JOS routerjson: a window too large to
page through is halved; the same phone in a Taobao order and a JD order is one customer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.jd import connector as jd_connector
from engine import shop_sync
from engine.db import models
from engine.db.session import session_factory
from tests.connectors.shop_platforms import (
    JOS_APP_KEY,
    JOS_SECRET,
    JOS_TOKEN,
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
from tests.connectors.test_taobao_sync import configure, counts, polled_kinds

__all__ = ["polled_kinds"]  # fixture
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
SHOP = "jd-pop"


@pytest.fixture
def jos() -> Iterator[FakeJos]:
    with FakeJos() as server:
        yield server  # type: ignore[misc]


def configure_jd(db_url: str, jos: FakeJos, **settings: object) -> None:
    configure(db_url, SHOP, "jd", {"app_key": JOS_APP_KEY, "shop": SHOP, "gateway_url": jos.url,
                                   "backfill_hours": 1, **settings},
              {"app_secret": JOS_SECRET, "access_token": JOS_TOKEN})


def test_a_window_with_more_refunds_than_the_api_pages_through_is_halved(
        db_url: str, jos: FakeJos, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jd_connector, "REFUND_MAX_PAGES", 1)  # JOS pages at most 100 × 50; here 1 × 50
    configure_jd(db_url, jos)
    jos.applies.extend(jd_apply(7000 + i, 300000 + i, NOW - timedelta(seconds=20 * i + 5)) for i in range(60))

    result = shop_sync.poll_connector(db_url, SHOP, now=NOW)

    orders, refunds = result.streams
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
