"""Helpers for the settlement tests: orders and refunds straight into the canonical tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.db import models

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A Shanghai local time: ``at("2026-10-03 10:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def order(db: Session, order_id: str, amount_fen: int, paid: str, *, shop: str = "S001", channel: str = "youzan",
          status: str = "paid", **attribution: str) -> models.Order:
    row = models.Order(channel=channel, shop=shop, order_id=order_id, source="test", status=status,
                       amount_fen=amount_fen, refunded_fen=0, items=[], attribution=dict(attribution),
                       paid_at=at(paid), created_at=at(paid))
    db.add(row)
    db.flush()
    return row


def refund(db: Session, of: models.Order, amount_fen: int, completed: str, refund_id: str | None = None
           ) -> models.Refund:
    row = models.Refund(channel=of.channel, shop=of.shop, refund_id=refund_id or f"{of.order_id}-r{amount_fen}",
                        order_id=of.order_id, source="test", status="completed", amount_fen=amount_fen,
                        requested_at=at(completed), completed_at=at(completed))
    of.refunded_fen += amount_fen
    db.add(row)
    db.flush()
    return row


STORE_PLAN: dict[str, Any] = {
    "key": "store-monthly", "name": "月度门店结算", "cycle": "monthly", "party": "shop",
    "party_types": {"S001": "direct", "S002": "franchise"}, "default_party_type": "franchise",
    "rate_plan": {"type": "flat", "rates_by": "party_type", "rates": {"direct": "5", "franchise": "3"}},
}

AGENT_PLAN: dict[str, Any] = {
    "key": "agent-tiers", "name": "代理阶梯返佣", "cycle": "monthly", "party": "attribution.agent",
    "rate_plan": {"type": "tiered", "mode": "retroactive",
                  "tiers": [{"from": 50000000, "rate": "3"}, {"from": 100000000, "rate": "5"}]},
}

SPLIT_PLAN: dict[str, Any] = {
    "key": "anchor-split", "name": "主播三方分润", "cycle": "daily", "party": "attribution.anchor",
    "split_parties": {"anchor": "attribution.anchor", "agency": "attribution.agency", "platform": "platform"},
    "rate_plan": {"type": "split", "of": {"type": "flat", "name": "commission pool", "default_rate": "20"},
                  "parties": [{"party": "anchor", "percent": "50"}, {"party": "agency", "percent": "30"},
                              {"party": "platform", "percent": "20"}]},
}
