"""Redemption (核销) from order events: the hook called directly, and through event ingestion."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.coupons.redemption import redeem_from_event
from engine import event_hooks
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.activities.coupons.coupon_kit import NOW, issue, make_campaign, make_customer

PAID = NOW + timedelta(days=1)


def coupon(db_url: str, code: str | None) -> models.Coupon:
    with session_factory(db_url)() as db:
        row = db.get(models.Coupon, code)
        assert row is not None
        return row


def hook(db_url: str, customer_id: str | None, payload: Any, event_type: str = "order.paid",
         at: datetime = PAID) -> None:
    with transaction(db_url) as db:
        redeem_from_event(db, models.EventRecord(source="api", external_id="e", type=event_type,
                                                 customer_id=customer_id, payload=payload, occurred_at=at))


@pytest.fixture
def issued(db_url: str) -> tuple[str, str]:
    """(customer id, coupon code) of a coupon valid for 7 days."""
    make_campaign(db_url, validity_days=7, per_customer_limit=3)
    cid = make_customer(db_url)
    code = issue(db_url, "welcome-20", cid).code
    assert code is not None
    return cid, code


def test_order_paid_with_coupon_code_redeems_it(db_url: str, issued: tuple[str, str]) -> None:
    cid, code = issued
    hook(db_url, cid, {"order_id": "E1001", "amount": 9900, "coupon_code": code})
    row = coupon(db_url, code)
    assert (row.status, row.order_id, row.redeemed_at) == ("redeemed", "E1001", PAID)


def test_a_coupons_list_redeems_each_and_completed_orders_count(db_url: str, issued: tuple[str, str]) -> None:
    cid, code = issued
    second = issue(db_url, "welcome-20", cid).code
    hook(db_url, cid, {"order_id": 77, "coupons": [code.lower(), {"code": second}, "UNKNOWN-1234567890"]},
         event_type="order.completed")
    assert coupon(db_url, code).status == coupon(db_url, second).status == "redeemed"
    assert coupon(db_url, second).order_id == "77"


def test_a_typed_code_with_crockford_slips_is_found(db_url: str, issued: tuple[str, str]) -> None:
    cid, _code = issued
    with transaction(db_url) as db:
        db.add(models.Coupon(code="LOL-0A1B0C1D0E", campaign_id="welcome-20", customer_id=cid,
                             idempotency_key="typed", issued_at=NOW))
    hook(db_url, cid, {"order_id": "E1", "coupon_code": " lol-oaibOCLDoe "})  # the prefix is read as written
    assert coupon(db_url, "LOL-0A1B0C1D0E").status == "redeemed"


def test_someone_elses_coupon_is_not_redeemed(db_url: str, issued: tuple[str, str]) -> None:
    _cid, code = issued
    hook(db_url, make_customer(db_url, "李四"), {"order_id": "E2", "coupon_code": code})
    assert coupon(db_url, code).status == "issued"


def test_expired_and_already_redeemed_coupons_stay_as_they_are(db_url: str, issued: tuple[str, str]) -> None:
    cid, code = issued
    hook(db_url, cid, {"order_id": "E3", "coupon_code": code}, at=NOW + timedelta(days=7))
    assert coupon(db_url, code).status == "issued"  # expired at exactly day 7
    hook(db_url, cid, {"order_id": "E4", "coupon_code": code})
    hook(db_url, cid, {"order_id": "E5", "coupon_code": code}, at=PAID + timedelta(hours=1))
    row = coupon(db_url, code)
    assert (row.status, row.order_id, row.redeemed_at) == ("redeemed", "E4", PAID)


def test_a_merged_customer_redeems_the_coupon_of_the_customer_merged_away(db_url: str) -> None:
    make_campaign(db_url)
    with transaction(db_url) as db:
        older = resolve(db, {"phone": "13800138000"})
    with transaction(db_url) as db:
        newer = resolve(db, {"wechat_openid": "o-123"})
    code = issue(db_url, "welcome-20", newer).code
    with transaction(db_url) as db:
        assert resolve(db, {"phone": "13800138000", "wechat_openid": "o-123"}) == older
    hook(db_url, older, {"order_id": "E6", "coupon_code": code})
    assert coupon(db_url, code).status == "redeemed"


@pytest.mark.parametrize("payload", [{"coupon_code": 12345}, {"coupons": "NEW20-X"}, {"coupons": [None, 3, []]},
                                     {"coupon_code": "x" * 500}, {"coupon_code": ""}, ["not", "a", "dict"], None,
                                     {"coupon_code": "NEW20-NOPE", "order_id": {"nested": True}}])
def test_bad_payloads_are_ignored_never_raised(db_url: str, issued: tuple[str, str], payload: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    cid, code = issued
    with caplog.at_level(logging.DEBUG, logger="activities.coupons.redemption"):
        hook(db_url, cid, payload)
    assert coupon(db_url, code).status == "issued"


def test_other_events_and_events_without_a_customer_redeem_nothing(db_url: str, issued: tuple[str, str]) -> None:
    cid, code = issued
    hook(db_url, cid, {"order_id": "E7", "coupon_code": code}, event_type="order.created")
    hook(db_url, None, {"order_id": "E7", "coupon_code": code})
    assert coupon(db_url, code).status == "issued"


def test_an_ingested_order_event_redeems_once(db_url: str, issued: tuple[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_hooks, "_hooks", [("coupons", redeem_from_event)])
    cid, code = issued
    event = ingest.EventIn(id="order-E8-paid", type="order.paid", customer={"customer_id": cid},
                           occurred_at=PAID, payload={"order_id": "E8", "coupon_code": code})
    status, _seen, _routing = ingest.store(event, db_url)
    assert status == "accepted"
    row = coupon(db_url, code)
    assert (row.status, row.order_id, row.redeemed_at) == ("redeemed", "E8", PAID)
    assert ingest.store(event, db_url)[0] == "duplicate"
    bad = ingest.EventIn(id="order-E9-paid", type="order.paid", customer={"customer_id": cid},
                         payload={"order_id": "E9", "coupons": [{"code": 1}], "coupon_code": ["x"]})
    assert ingest.store(bad, db_url)[0] == "accepted"
    assert coupon(db_url, code).order_id == "E8"


def test_expiry_uses_when_the_order_happened(db_url: str, issued: tuple[str, str]) -> None:
    cid, code = issued
    hook(db_url, cid, {"order_id": "E10", "coupon_code": code},
         at=datetime(2026, 11, 30, 1, 59, tzinfo=UTC))  # a minute before the 7 days end
    assert coupon(db_url, code).status == "redeemed"
