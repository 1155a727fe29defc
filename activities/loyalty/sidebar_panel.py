"""The loyalty section of the WeCom chat sidebar (``tideflow.sidebar_panels``): tier, points, what lapses
soon — and the facts suggestion rules use (``tier``, ``points``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from activities.loyalty import ledger
from activities.loyalty.program import load
from activities.sidebar.picture import Panel


def loyalty_panel(db: Session, customer_id: str, now: datetime) -> Panel | None:
    """None for a customer without a points account (nothing to show)."""
    summary = ledger.summary(db, customer_id, now, entries=1)
    if not summary["tier"] and not summary["lifetime_earned"] and not summary["ledger"]:
        return None
    horizon = now + timedelta(days=load(db).expiring_notice_days)
    soon = [lot for lot in summary["lots"] if lot["expires_at"] and not lot["expired"]
            and datetime.fromisoformat(lot["expires_at"]) <= horizon]
    tier = summary["tier_name"] or summary["tier"] or "—"
    items = [{"label": {"zh-CN": "会员等级", "en": "Tier"}, "value": tier},
             {"label": {"zh-CN": "可用积分", "en": "Points"}, "value": str(summary["balance"])}]
    if soon:
        first = min(lot["expires_at"] for lot in soon)[:10]
        items.append({"label": {"zh-CN": "即将过期", "en": "Expiring soon"},
                      "value": f"{sum(lot['remaining'] for lot in soon)} ({first})"})
    if summary["ledger"]:
        last = summary["ledger"][0]
        items.append({"label": {"zh-CN": "最近变动", "en": "Last change"},
                      "value": f"{last['points']:+d} · {last['at'][:10]}"})
    return Panel(key="loyalty", title={"zh-CN": "会员积分", "en": "Loyalty points"}, items=items,
                 facts={"tier": tier, "points": summary["balance"]})
