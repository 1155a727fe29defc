"""Concurrent issuance never oversells: many threads, one campaign, real PostgreSQL (and SQLite).

Every thread waits at a barrier and then issues in its own transaction, as concurrent
journeys' activities do. The campaign row lock serialises them; the counters must match
the coupons exactly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from activities.coupons.issuance import IssueOutcome, OutOfStock
from engine.db import models
from engine.db.session import session_factory
from tests.activities.coupons.coupon_kit import issue, make_campaign, make_customer


def race(count: int, attempt: Callable[[int], IssueOutcome]) -> list[IssueOutcome]:
    """Run ``attempt(i)`` for i in range(count) on ``count`` threads released at once."""
    barrier = threading.Barrier(count)

    def one(i: int) -> IssueOutcome:
        barrier.wait(timeout=60)
        return attempt(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def state(db_url: str, campaign_id: str) -> tuple[models.CouponCampaign, list[models.Coupon], dict[str, int]]:
    with session_factory(db_url)() as db:
        campaign = db.get(models.CouponCampaign, campaign_id)
        assert campaign is not None
        coupons = list(db.scalars(select(models.Coupon).where(models.Coupon.campaign_id == campaign_id)))
        days = {r.day: r.issued for r in db.scalars(select(models.CouponDailyCount)
                                                    .where(models.CouponDailyCount.campaign_id == campaign_id))}
        return campaign, coupons, days


def test_forty_threads_never_oversell_fifteen(any_db_url: str) -> None:
    make_campaign(any_db_url, total_stock=15)
    customers = [make_customer(any_db_url, f"客户{i}") for i in range(40)]
    results = race(40, lambda i: issue(any_db_url, "welcome-20", customers[i], f"journey/f/{i}/coupon/1"))
    issued = [r for r in results if r.issued]
    assert len(issued) == 15
    assert {r.reason for r in results if not r.issued} == {OutOfStock.TOTAL_STOCK}
    campaign, coupons, days = state(any_db_url, "welcome-20")
    assert campaign.issued_count == 15 and len(coupons) == 15 and days == {"2026-11-23": 15}
    assert len({c.code for c in coupons}) == 15 and {c.code for c in coupons} == {r.code for r in issued}
    assert len({c.customer_id for c in coupons}) == 15


def test_one_customer_racing_ten_times_gets_one_coupon(pg_url: str) -> None:
    make_campaign(pg_url, per_customer_limit=1)
    cid = make_customer(pg_url)
    results = race(10, lambda i: issue(pg_url, "welcome-20", cid, f"journey/flow-{i}/{cid}/coupon/1"))
    assert sum(r.issued for r in results) == 1
    assert {r.reason for r in results if not r.issued} == {OutOfStock.PER_CUSTOMER_LIMIT}
    campaign, coupons, _days = state(pg_url, "welcome-20")
    assert campaign.issued_count == 1 and len(coupons) == 1 and coupons[0].customer_id == cid


def test_daily_budget_holds_under_a_race(pg_url: str) -> None:
    make_campaign(pg_url, daily_budget=5, total_stock=100)
    customers = [make_customer(pg_url, f"客户{i}") for i in range(20)]
    results = race(20, lambda i: issue(pg_url, "welcome-20", customers[i]))
    assert sum(r.issued for r in results) == 5
    assert {r.reason for r in results if not r.issued} == {OutOfStock.DAILY_BUDGET}
    campaign, coupons, days = state(pg_url, "welcome-20")
    assert campaign.issued_count == 5 and len(coupons) == 5 and days == {"2026-11-23": 5}


def test_one_key_racing_issues_once(pg_url: str) -> None:
    make_campaign(pg_url, per_customer_limit=5)
    cid = make_customer(pg_url)
    key = f"journey/f/{uuid.uuid4().hex}/coupon/1"
    results = race(10, lambda i: issue(pg_url, "welcome-20", cid, key))
    assert all(r.issued for r in results) and len({r.code for r in results}) == 1
    assert sum(not r.repeated for r in results) == 1
    campaign, coupons, _days = state(pg_url, "welcome-20")
    assert campaign.issued_count == 1 and len(coupons) == 1
