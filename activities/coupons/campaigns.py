"""Coupon campaigns (优惠券活动) as the designer shows them: face value and counts.

Money is integer fen or a decimal string of yuan (``"20.00"``), never a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.coupons.validity import BUDGET_TIMEZONE, day_key
from activities.settlement.errors import MoneyError
from activities.settlement.money import format_yuan, parse_yuan
from engine.db import models
from engine.text import Msg

#: the largest face value a campaign may have: ¥100,000,000.00
MAX_VALUE_FEN: Final = 10_000_000_000
STATUSES: Final = ("active", "paused", "ended")


def value_fen(value: object) -> int:
    """A face value as integer fen: an int is fen (``2000``), a string is yuan (``"20.00"``).

    Floats, booleans, negative amounts and fractions of a fen raise ValueError saying what to send.
    """
    if isinstance(value, bool | float):
        raise ValueError(Msg("'%(value)s' is not an amount of money: send integer fen (2000) or a "
                             'decimal string of yuan ("20.00"), never a float',
                             value=value))
    if isinstance(value, int):
        fen = value
    elif isinstance(value, str):
        try:
            fen = parse_yuan(value, what="value")
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
    else:
        raise ValueError(Msg('send integer fen (2000) or a decimal string of yuan ("20.00")'))
    if fen < 0:
        raise ValueError(Msg("a coupon's value cannot be negative"))
    if fen > MAX_VALUE_FEN:
        raise ValueError(Msg("a coupon's value is at most %(value)s yuan",
                             value=format_yuan(MAX_VALUE_FEN)))
    return fen


def value_yuan(fen: int) -> str:
    """Integer fen as yuan text: 2000 → ``"20.00"``."""
    return format_yuan(fen)


@dataclass(frozen=True)
class CampaignCounts:
    """How a campaign is doing: issued, redeemed, expired unused, stock left, issued today."""

    issued: int
    redeemed: int
    expired: int
    remaining_stock: int | None
    issued_today: int
    today: str


def counts(db: Session, campaigns: Sequence[models.CouponCampaign], now: datetime,
           timezone: str = BUDGET_TIMEZONE) -> dict[str, CampaignCounts]:
    """Counts for each campaign (by id), in three queries whatever the number of campaigns."""
    ids = [c.id for c in campaigns]
    if not ids:
        return {}
    today = day_key(now, timezone)
    coupon = models.Coupon
    redeemed: dict[str, int] = {cid: n for cid, n in db.execute(
        select(coupon.campaign_id, func.count())
        .where(coupon.campaign_id.in_(ids), coupon.status == "redeemed")
        .group_by(coupon.campaign_id))}
    expired: dict[str, int] = {cid: n for cid, n in db.execute(
        select(coupon.campaign_id, func.count())
        .where(coupon.campaign_id.in_(ids), coupon.status.in_(("issued", "expired")),
               coupon.expires_at.is_not(None), coupon.expires_at <= now)
        .group_by(coupon.campaign_id))}
    daily: dict[str, int] = {cid: n for cid, n in db.execute(
        select(models.CouponDailyCount.campaign_id, models.CouponDailyCount.issued)
        .where(models.CouponDailyCount.campaign_id.in_(ids), models.CouponDailyCount.day == today))}
    return {c.id: CampaignCounts(
        issued=c.issued_count, redeemed=redeemed.get(c.id, 0), expired=expired.get(c.id, 0),
        remaining_stock=None if c.total_stock is None else max(c.total_stock - c.issued_count, 0),
        issued_today=daily.get(c.id, 0), today=today) for c in campaigns}
