"""Demo orders for the settlement templates, so the finance dashboard has something to show.

Two thousand orders over the last two complete months (stores S001–S006 with agents A01–A05, and live
streams of anchors zhubo-1…4 with agencies mcn-1/mcn-2), some refunded — one of them late, in the
following month, so a clawback shows. The older month of 月度门店结算 is settled and approved, the newer
one is settled and waits for finance. Deterministic (a fixed seed); added once.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from activities.settlement.periods import Period, period_containing, period_to_settle
from activities.settlement.runs import decide, settle, submit_run
from activities.settlement.settlement_plan import load_settlement_plan
from engine.db import models

SOURCE = "demo-settlement"
STORES = ("S001", "S002", "S003", "S004", "S005", "S006")
AGENTS = ("A01", "A02", "A03", "A04", "A05")
ANCHORS = {"zhubo-1": "mcn-1", "zhubo-2": "mcn-1", "zhubo-3": "mcn-2", "zhubo-4": "mcn-2"}


def _months(now: datetime) -> tuple[Period, Period]:
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    last = period_to_settle("monthly", today)
    before = period_containing("monthly", last.start - timedelta(days=1))
    return before, last


def seed_orders(db: Session, now: datetime, count: int = 2000) -> int:
    """Insert the demo orders (once); the number inserted."""
    if db.scalar(select(models.Order.id).where(models.Order.source == SOURCE).limit(1)) is not None:
        return 0
    rng = random.Random(20261123)
    zone = ZoneInfo("Asia/Shanghai")
    before, last = _months(now)
    start = datetime.combine(before.start, time(0), tzinfo=zone)
    span = int((datetime.combine(last.end + timedelta(days=1), time(0), tzinfo=zone) - start).total_seconds())
    orders: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    for n in range(count):
        paid = (start + timedelta(seconds=rng.randrange(span))).astimezone(UTC)
        if n % 3 == 2:
            anchor = rng.choice(sorted(ANCHORS))
            channel, shop = "douyin", "live-room"
            attribution = {"anchor": anchor, "agency": ANCHORS[anchor]}
            amount = rng.randrange(1990, 59900)
        else:
            channel, shop = "youzan", rng.choice(STORES)
            attribution = {"store": shop, "agent": rng.choice(AGENTS)}
            amount = rng.randrange(5000, 500_000)
        order_id = f"demo-{n:05d}"
        orders.append({"channel": channel, "shop": shop, "order_id": order_id, "source": SOURCE, "status": "paid",
                       "amount_fen": amount, "refunded_fen": 0, "currency": "CNY", "items": [],
                       "attribution": attribution, "created_at": paid, "paid_at": paid, "updated_at": paid})
        if n % 40 == 0:
            done = paid + timedelta(days=rng.randrange(1, 20))
            if done > now:
                continue
            refund = amount // 2
            orders[-1]["refunded_fen"] = refund
            refunds.append({"channel": channel, "shop": shop, "refund_id": f"{order_id}-r", "order_id": order_id,
                            "source": SOURCE, "status": "completed", "amount_fen": refund, "reason": "demo",
                            "requested_at": done, "completed_at": done, "updated_at": done})
    db.execute(insert(models.Order), orders)
    db.execute(insert(models.Refund), refunds)
    return len(orders)


def seed_statements(db: Session, template: Path, now: datetime) -> list[int]:
    """Settle the last two months of 月度门店结算: the older approved, the newer waiting for finance."""
    if not template.exists() or db.scalar(select(models.SettlementRun.id).limit(1)) is not None:
        return []
    document = json.loads(template.read_text(encoding="utf-8"))
    node = next(n for n in document["nodes"] if n["type"] == "settlement.collect")
    plan = load_settlement_plan(node["config"]["plan"])
    made = []
    for index, period in enumerate(_months(now)):
        run = submit_run(db, settle(db, plan, period, flow_id=document["id"], created_by="demo"))
        if index == 0:
            for statement in db.scalars(select(models.Statement).where(models.Statement.run_id == run.id)):
                decide(db, statement.id, "approved", "demo", "demo")
        made.append(run.id)
    return made
