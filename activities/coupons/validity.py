"""When a coupon is valid, and which day its issue counts against (pure functions, no I/O).

* A campaign issues coupons inside its validity window ``[valid_from, valid_until)``.
* A coupon expires ``validity_days`` after it was issued, but never after the campaign's
  ``valid_until``; with neither set it does not expire.
* Daily budgets count issues per calendar day in one timezone (Asia/Shanghai unless told
  otherwise), so "100 a day" means 100 between local midnights.

Every datetime must be timezone-aware; naive ones raise ValueError.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from engine.text import Msg

#: the timezone whose calendar days daily budgets count in
BUDGET_TIMEZONE: Final = "Asia/Shanghai"


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(Msg("%(name)s %(value)s must be timezone-aware",
                             name=name, value=moment.isoformat()))
    return moment


def expiry(issued_at: datetime, validity_days: int | None, valid_until: datetime | None) -> datetime | None:
    """When a coupon issued at ``issued_at`` stops being usable (None: never)."""
    _aware(issued_at, "issued_at")
    if validity_days is not None and validity_days < 1:
        raise ValueError(Msg("validity_days must be at least 1, got %(validity_days)s",
                             validity_days=validity_days))
    ends = issued_at + timedelta(days=validity_days) if validity_days is not None else None
    if valid_until is not None:
        _aware(valid_until, "valid_until")
        ends = valid_until if ends is None else min(ends, valid_until)
    return ends


def day_key(moment: datetime, timezone: str = BUDGET_TIMEZONE) -> str:
    """The local calendar day of ``moment`` in ``timezone``, as ``YYYY-MM-DD``."""
    return _aware(moment, "moment").astimezone(ZoneInfo(timezone)).date().isoformat()


def window_problem(now: datetime, valid_from: datetime | None, valid_until: datetime | None) -> str | None:
    """Why ``now`` is outside ``[valid_from, valid_until)``, or None when it is inside."""
    _aware(now, "now")
    if valid_from is not None and now < _aware(valid_from, "valid_from"):
        return f"the campaign starts at {valid_from.isoformat()}"
    if valid_until is not None and now >= _aware(valid_until, "valid_until"):
        return f"the campaign ended at {valid_until.isoformat()}"
    return None


def is_expired(expires_at: datetime | None, at: datetime) -> bool:
    """Whether a coupon expiring at ``expires_at`` can no longer be used at ``at``."""
    return expires_at is not None and _aware(at, "at") >= _aware(expires_at, "expires_at")
