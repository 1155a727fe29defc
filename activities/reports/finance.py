"""The finance board: amounts settled, pending and paid, by period and by party.

Definitions (docs/dashboards.md): the statements of the settlement runs whose period overlaps the range,
corrections included, rejected ones left out.

- **Pending**: awaiting finance's decision (draft or pending approval).
- **Settled**: approved by finance (approved or already paid).
- **Paid**: paid out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.reports import Range
from engine.db import models

PENDING = ("draft", "pending")
SETTLED = ("approved", "paid")


def _empty() -> dict[str, int]:
    return {"settled_fen": 0, "pending_fen": 0, "paid_fen": 0, "statements": 0}


def amounts(db: Session, r: Range) -> dict[str, Any]:
    rows = db.execute(select(models.Statement.party, models.Statement.status, models.Statement.total_fen,
                             models.SettlementRun.period_from, models.SettlementRun.period_to,
                             models.SettlementRun.plan_key)
                      .join(models.SettlementRun, models.SettlementRun.id == models.Statement.run_id)
                      .where(models.SettlementRun.period_from <= r.end.isoformat(),
                             models.SettlementRun.period_to >= r.start.isoformat(),
                             models.Statement.status != "rejected")).all()
    totals = _empty()
    by_period: dict[str, dict[str, int]] = defaultdict(_empty)
    by_party: dict[str, dict[str, int]] = defaultdict(_empty)
    for party, status, fen, start, end, _plan in rows:
        for bucket in (totals, by_period[f"{start}..{end}"], by_party[str(party)]):
            bucket["statements"] += 1
            if status in PENDING:
                bucket["pending_fen"] += int(fen)
            if status in SETTLED:
                bucket["settled_fen"] += int(fen)
            if status == "paid":
                bucket["paid_fen"] += int(fen)
    return {"totals": totals, "by_period": dict(sorted(by_period.items())),
            "by_party": dict(sorted(by_party.items(), key=lambda kv: (-kv[1]["settled_fen"] - kv[1]["pending_fen"],
                                                                      kv[0])))}


def board(db: Session, r: Range) -> dict[str, Any]:
    """Every figure of the finance board."""
    return {"range": r.as_dict(), **amounts(db, r)}
