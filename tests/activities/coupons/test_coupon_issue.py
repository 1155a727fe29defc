"""Issuing: each out-of-stock reason, idempotency per key, merged customers, and the node's action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from activities.coupons.codes import ALPHABET
from activities.coupons.issuance import CampaignNotFound, OutOfStock, issue_coupon
from activities.coupons.issue_coupon import IssueCoupon
from engine.actions import ActionFailed, Services, perform
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.registry import default_registry
from engine.runtime import ActionRequest
from tests.activities.coupons.coupon_kit import NOW, issue, make_campaign, make_customer


def campaign_row(db_url: str, campaign_id: str) -> models.CouponCampaign:
    with session_factory(db_url)() as db:
        row = db.get(models.CouponCampaign, campaign_id)
        assert row is not None
        return row


def coupons_of(db_url: str, campaign_id: str) -> list[models.Coupon]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Coupon).where(models.Coupon.campaign_id == campaign_id)
                               .order_by(models.Coupon.issued_at)))


def daily(db_url: str, campaign_id: str) -> dict[str, int]:
    with session_factory(db_url)() as db:
        return {r.day: r.issued for r in db.scalars(select(models.CouponDailyCount)
                                                    .where(models.CouponDailyCount.campaign_id == campaign_id))}


def test_issue_records_the_coupon_and_both_counters(any_db_url: str) -> None:
    cid = make_customer(any_db_url)
    make_campaign(any_db_url, validity_days=7, valid_until=NOW + timedelta(days=30), daily_budget=100, total_stock=10)
    outcome = issue(any_db_url, "welcome-20", cid, "k1")
    assert outcome.issued and not outcome.repeated and outcome.reason is None
    assert outcome.code is not None and outcome.code.startswith("NEW20-") and set(outcome.code[6:]) <= set(ALPHABET)
    assert outcome.expires_at == NOW + timedelta(days=7) and outcome.value_fen == 2000
    assert campaign_row(any_db_url, "welcome-20").issued_count == 1
    assert daily(any_db_url, "welcome-20") == {"2026-11-23": 1}
    [coupon] = coupons_of(any_db_url, "welcome-20")
    assert (coupon.code, coupon.customer_id, coupon.idempotency_key, coupon.status) == (outcome.code, cid, "k1",
                                                                                        "issued")
    assert coupon.issued_at == NOW and coupon.expires_at == NOW + timedelta(days=7)


def test_expiry_is_capped_by_the_campaign_end(db_url: str) -> None:
    make_campaign(db_url, validity_days=30, valid_until=NOW + timedelta(days=2))
    assert issue(db_url, "welcome-20", make_customer(db_url)).expires_at == NOW + timedelta(days=2)


def test_same_key_returns_the_same_coupon_even_when_stock_is_gone(any_db_url: str) -> None:
    cid = make_customer(any_db_url)
    make_campaign(any_db_url, total_stock=1)
    first = issue(any_db_url, "welcome-20", cid, "journey/x/c/1")
    again = issue(any_db_url, "welcome-20", cid, "journey/x/c/1")
    assert again.issued and again.repeated and again.code == first.code and again.expires_at == first.expires_at
    with transaction(any_db_url) as db:
        db.get(models.CouponCampaign, "welcome-20").status = "ended"  # type: ignore[union-attr]
    assert issue(any_db_url, "welcome-20", cid, "journey/x/c/1").code == first.code
    assert campaign_row(any_db_url, "welcome-20").issued_count == 1 and len(coupons_of(any_db_url, "welcome-20")) == 1


def test_total_stock_runs_out(any_db_url: str) -> None:
    make_campaign(any_db_url, total_stock=2)
    results = [issue(any_db_url, "welcome-20", make_customer(any_db_url)) for _ in range(3)]
    assert [r.status for r in results] == ["issued", "issued", "out_of_stock"]
    assert results[2].reason is OutOfStock.TOTAL_STOCK and "2" in results[2].message
    assert campaign_row(any_db_url, "welcome-20").issued_count == 2
    assert daily(any_db_url, "welcome-20") == {"2026-11-23": 2}


def test_zero_stock_issues_nothing(db_url: str) -> None:
    make_campaign(db_url, total_stock=0)
    assert issue(db_url, "welcome-20", make_customer(db_url)).reason is OutOfStock.TOTAL_STOCK


def test_daily_budget_counts_shanghai_days(db_url: str) -> None:
    make_campaign(db_url, daily_budget=2)
    late = datetime(2026, 11, 23, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    midnight = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 00:00 next day in Shanghai
    got = [issue(db_url, "welcome-20", make_customer(db_url), now=t) for t in (NOW, late, late, midnight, midnight)]
    assert [g.status for g in got] == ["issued", "issued", "out_of_stock", "issued", "issued"]
    assert got[2].reason is OutOfStock.DAILY_BUDGET and "2026-11-23" in got[2].message
    assert daily(db_url, "welcome-20") == {"2026-11-23": 2, "2026-11-24": 2}
    assert campaign_row(db_url, "welcome-20").issued_count == 4


def test_per_customer_limit(db_url: str) -> None:
    make_campaign(db_url, per_customer_limit=2)
    zhang, li = make_customer(db_url), make_customer(db_url, "李四")
    got = [issue(db_url, "welcome-20", zhang) for _ in range(3)]
    assert [g.status for g in got] == ["issued", "issued", "out_of_stock"]
    assert got[2].reason is OutOfStock.PER_CUSTOMER_LIMIT
    assert issue(db_url, "welcome-20", li).issued


def test_merged_customers_share_one_limit(db_url: str) -> None:
    make_campaign(db_url)
    with transaction(db_url) as db:
        old = resolve(db, {"phone": "13800138000"}, "王五")
    with transaction(db_url) as db:
        new = resolve(db, {"wecom_external_userid": "wm-1"}, "王五")
    assert issue(db_url, "welcome-20", new).issued
    with transaction(db_url) as db:  # one event links both identities: the customers merge
        survivor = resolve(db, {"phone": "13800138000", "wecom_external_userid": "wm-1"})
    assert survivor == old
    refused = issue(db_url, "welcome-20", old)
    assert refused.reason is OutOfStock.PER_CUSTOMER_LIMIT
    assert issue(db_url, "welcome-20", new).reason is OutOfStock.PER_CUSTOMER_LIMIT


@pytest.mark.parametrize("status", ["paused", "ended"])
def test_inactive_campaigns_issue_nothing(db_url: str, status: str) -> None:
    make_campaign(db_url, status=status)
    outcome = issue(db_url, "welcome-20", make_customer(db_url))
    assert outcome.reason is OutOfStock.NOT_ACTIVE and status in outcome.message


def test_outside_the_validity_window(db_url: str) -> None:
    make_campaign(db_url, valid_from=NOW, valid_until=NOW + timedelta(days=1))
    cid = make_customer(db_url)
    early = issue(db_url, "welcome-20", cid, now=NOW - timedelta(minutes=1))
    late = issue(db_url, "welcome-20", cid, now=NOW + timedelta(days=1))
    assert early.reason is late.reason is OutOfStock.OUTSIDE_VALIDITY
    assert "starts" in early.message and "ended" in late.message
    assert issue(db_url, "welcome-20", cid, now=NOW).issued


def test_a_refusal_changes_nothing(db_url: str) -> None:
    make_campaign(db_url, daily_budget=1, total_stock=5)
    issue(db_url, "welcome-20", make_customer(db_url))
    assert issue(db_url, "welcome-20", make_customer(db_url)).reason is OutOfStock.DAILY_BUDGET
    assert campaign_row(db_url, "welcome-20").issued_count == 1 and daily(db_url, "welcome-20") == {"2026-11-23": 1}
    with session_factory(db_url)() as db:
        assert db.scalar(select(func.count()).select_from(models.Coupon)) == 1


def test_unknown_campaign_and_naive_time(db_url: str) -> None:
    with transaction(db_url) as db, pytest.raises(CampaignNotFound, match="'nope'"):
        issue_coupon(db, "nope", "c_1", "k", NOW)
    make_campaign(db_url)
    with transaction(db_url) as db, pytest.raises(ValueError, match="timezone-aware"):
        issue_coupon(db, "welcome-20", "c_1", "k", datetime(2026, 11, 23))


# -- the node -------------------------------------------------------------------------------------------------------


def request(customer_id: str | None, campaign: str = "welcome-20", key: str = "journey/f/c/coupon/1",
            simulate: bool = False) -> ActionRequest:
    return ActionRequest(key=key, workflow_id="journey/f/c", flow_id="f", version=1, node_id="coupon",
                         node_type="action.issue_coupon", config={"campaign": campaign}, customer_id=customer_id,
                         simulate=simulate, now=NOW.isoformat())


def test_the_node_type_is_registered() -> None:
    found = default_registry().get("action.issue_coupon")
    assert found is IssueCoupon
    described = IssueCoupon.describe()
    assert described["ports"] == ["out", "out_of_stock"] and described["category"] == "action"
    assert described["label"] == {"zh-CN": "发放优惠券", "en": "Issue coupon"}
    assert described["config_schema"]["required"] == ["campaign"]


def test_the_node_sets_variables_and_a_retry_returns_the_recorded_result(db_url: str) -> None:
    cid = make_customer(db_url)
    make_campaign(db_url, validity_days=7, total_stock=1)
    services = Services(database_url=db_url)
    first = perform(IssueCoupon, request(cid), services)
    assert first["port"] == "out"
    assert first["variables"]["coupon_code"].startswith("NEW20-")
    assert first["variables"]["coupon_expires_at"] == (NOW + timedelta(days=7)).isoformat()
    assert first["variables"]["coupon_value_fen"] == 2000
    assert first["detail"]["status"] == "issued"
    assert perform(IssueCoupon, request(cid), services) == first
    other = perform(IssueCoupon, request(make_customer(db_url), key="journey/f/d/coupon/1"), services)
    assert other["port"] == "out_of_stock" and other["variables"] == {}
    assert other["detail"]["reason"] == "total_stock"
    assert campaign_row(db_url, "welcome-20").issued_count == 1


def test_an_unknown_campaign_fails_the_node_naming_it(db_url: str) -> None:
    with pytest.raises(ActionFailed, match="campaign 'spring-sale' does not exist"):
        perform(IssueCoupon, request(make_customer(db_url), "spring-sale"), Services(database_url=db_url))
    with pytest.raises(ActionFailed, match="has none"):
        perform(IssueCoupon, request(None), Services(database_url=db_url))


def test_a_preview_without_the_campaign_shows_a_stand_in(db_url: str) -> None:
    result = perform(IssueCoupon, request(make_customer(db_url), "spring-sale", simulate=True),
                     Services(database_url=db_url))
    assert result["port"] == "out" and result["variables"]["coupon_code"].startswith("PREVIEW-")
    assert result["detail"]["status"] == "simulated"
