"""Issuing a coupon from a campaign (发券): stock, daily budget, per-customer limit — never oversold.

:func:`issue_coupon` runs inside the caller's transaction (an action's, together with the
idempotency ledger). It first locks the campaign row (``SELECT … FOR UPDATE`` on PostgreSQL;
on SQLite the write transaction already holds the database's single writer lock), so every
check and every counter update for one campaign happens one issuance at a time:

1. the same idempotency key returns the coupon it already issued (``repeated``);
2. the campaign must be ``active`` and inside its validity window;
3. the customer (merged customers count as one) must be below the per-customer limit;
4. the campaign's total stock and today's daily budget must have room;
5. then ``issued_count`` and the day's :class:`~engine.db.models.CouponDailyCount` go up by one
   and the coupon row is added — all committed together, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from activities.coupons.codes import unique_code
from activities.coupons.validity import BUDGET_TIMEZONE, day_key, expiry, window_problem
from engine.customers import canonical
from engine.db import models
from engine.text import Msg


class OutOfStock(StrEnum):
    """Why no coupon was issued; the node leaves by its ``out_of_stock`` port with this reason."""

    TOTAL_STOCK = "total_stock"
    DAILY_BUDGET = "daily_budget"
    PER_CUSTOMER_LIMIT = "per_customer_limit"
    NOT_ACTIVE = "campaign_not_active"
    OUTSIDE_VALIDITY = "outside_validity_window"


class CampaignNotFound(LookupError):
    """No coupon campaign has this id."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"coupon campaign '{campaign_id}' does not exist")
        self.campaign_id = campaign_id


@dataclass(frozen=True)
class IssueOutcome:
    """What :func:`issue_coupon` did: ``issued`` (with the coupon) or ``out_of_stock`` (with a reason)."""

    status: Literal["issued", "out_of_stock"]
    campaign_id: str
    value_fen: int
    code: str | None = None
    expires_at: datetime | None = None
    reason: OutOfStock | None = None
    message: str = ""
    #: the idempotency key had already issued this coupon; nothing new was issued
    repeated: bool = False

    @property
    def issued(self) -> bool:
        return self.status == "issued"

    def as_detail(self) -> dict[str, Any]:
        """For an action's log (JSON-safe)."""
        if self.issued:
            return {"status": "issued", "campaign": self.campaign_id, "code": self.code,
                    "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                    "value_fen": self.value_fen, "repeated": self.repeated}
        return {"status": "out_of_stock", "campaign": self.campaign_id,
                "reason": str(self.reason) if self.reason else None, "message": self.message}


def customer_ids(db: Session, customer_id: str) -> tuple[str, list[str]]:
    """The surviving customer for ``customer_id`` and every id merged into it (itself first)."""
    survivor = canonical(db, customer_id)
    found = [survivor]
    frontier = [survivor]
    while frontier:
        merged = [cid for cid in db.scalars(select(models.Customer.id)
                                            .where(models.Customer.merged_into.in_(frontier)))
                  if cid not in found]
        found.extend(merged)
        frontier = merged
    return survivor, found


def lock_campaign(db: Session, campaign_id: str) -> models.CouponCampaign:
    """The campaign, locked for the rest of the transaction and freshly read; CampaignNotFound if absent."""
    campaign = db.scalar(select(models.CouponCampaign).where(models.CouponCampaign.id == campaign_id)
                         .with_for_update().execution_options(populate_existing=True))
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


def _issued(coupon: models.Coupon, value_fen: int, repeated: bool) -> IssueOutcome:
    return IssueOutcome("issued", coupon.campaign_id, value_fen, code=coupon.code, expires_at=coupon.expires_at,
                        repeated=repeated)


def issue_coupon(db: Session, campaign_id: str, customer_id: str, key: str, now: datetime,
                 timezone: str = BUDGET_TIMEZONE) -> IssueOutcome:
    """Issue one coupon of ``campaign_id`` to ``customer_id`` under idempotency ``key`` at ``now``.

    Runs in the caller's transaction; raises :class:`CampaignNotFound` for an unknown campaign.
    ``timezone`` decides which calendar day the daily budget counts.
    """
    if now.tzinfo is None:
        raise ValueError(Msg("now must be timezone-aware"))
    campaign = lock_campaign(db, campaign_id)
    value = campaign.value_fen

    def refused(reason: OutOfStock, message: str) -> IssueOutcome:
        return IssueOutcome("out_of_stock", campaign_id, value, reason=reason, message=message)

    done = db.scalar(select(models.Coupon).where(models.Coupon.idempotency_key == key))
    if done is not None:
        return _issued(done, value, repeated=True)
    if campaign.status != "active":
        return refused(OutOfStock.NOT_ACTIVE, f"the campaign is {campaign.status}")
    outside = window_problem(now, campaign.valid_from, campaign.valid_until)
    if outside is not None:
        return refused(OutOfStock.OUTSIDE_VALIDITY, outside)
    owner, aliases = customer_ids(db, customer_id)
    have = db.scalar(select(func.count()).select_from(models.Coupon).where(
        models.Coupon.campaign_id == campaign_id, models.Coupon.customer_id.in_(aliases))) or 0
    if have >= campaign.per_customer_limit:
        return refused(OutOfStock.PER_CUSTOMER_LIMIT,
                       f"the customer already has {have} of at most {campaign.per_customer_limit}")
    if campaign.total_stock is not None and campaign.issued_count >= campaign.total_stock:
        return refused(OutOfStock.TOTAL_STOCK, f"all {campaign.total_stock} coupons are issued")
    day = day_key(now, timezone)
    today = db.scalar(select(models.CouponDailyCount).where(
        models.CouponDailyCount.campaign_id == campaign_id, models.CouponDailyCount.day == day)
        .execution_options(populate_existing=True))
    if campaign.daily_budget is not None and (today.issued if today else 0) >= campaign.daily_budget:
        return refused(OutOfStock.DAILY_BUDGET, f"today's budget of {campaign.daily_budget} ({day}) is used up")

    # the counter goes up in SQL, guarded, so even a caller that skipped the lock cannot oversell
    counted = db.execute(
        update(models.CouponCampaign)
        .where(models.CouponCampaign.id == campaign_id,
               or_(models.CouponCampaign.total_stock.is_(None),
                   models.CouponCampaign.issued_count < models.CouponCampaign.total_stock))
        .values(issued_count=models.CouponCampaign.issued_count + 1)
        .execution_options(synchronize_session=False))
    if getattr(counted, "rowcount", 1) != 1:
        return refused(OutOfStock.TOTAL_STOCK, f"all {campaign.total_stock} coupons are issued")
    db.expire(campaign, ["issued_count"])
    if today is None:
        db.add(models.CouponDailyCount(campaign_id=campaign_id, day=day, issued=1))
    else:
        today.issued = today.issued + 1
    code = unique_code(lambda c: db.get(models.Coupon, c) is not None, campaign.code_prefix)
    coupon = models.Coupon(code=code, campaign_id=campaign_id, customer_id=owner, idempotency_key=key,
                           status="issued", issued_at=now,
                           expires_at=expiry(now, campaign.validity_days, campaign.valid_until))
    db.add(coupon)
    db.flush()
    return _issued(coupon, value, repeated=False)
