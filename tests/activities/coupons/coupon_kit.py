"""Small builders for the coupon tests: campaigns, customers, one issuance in its own transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from activities.coupons.issuance import IssueOutcome, issue_coupon
from engine.customers import resolve
from engine.db import models
from engine.db.session import transaction

#: 10:00 in Shanghai on 2026-11-23
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def make_campaign(db_url: str, campaign_id: str = "welcome-20", **fields: Any) -> str:
    values: dict[str, Any] = {"name": "新客立减20元", "value_fen": 2000, "total_stock": None, "issued_count": 0,
                              "daily_budget": None, "per_customer_limit": 1, "code_prefix": "NEW20-",
                              "status": "active", **fields}
    with transaction(db_url) as db:
        db.add(models.CouponCampaign(id=campaign_id, **values))
    return campaign_id


def make_customer(db_url: str, name: str = "张三") -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": uuid.uuid4().hex}, name)


def issue(db_url: str, campaign_id: str, customer_id: str, key: str | None = None,
          now: datetime = NOW) -> IssueOutcome:
    with transaction(db_url) as db:
        return issue_coupon(db, campaign_id, customer_id, key or uuid.uuid4().hex, now)
