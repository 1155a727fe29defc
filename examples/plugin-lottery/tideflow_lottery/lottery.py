"""plugin.lottery: a weighted lottery draw (抽奖) with a prize budget per flow node.

- Each prize has a ``weight`` (its relative chance) and a ``budget`` (how many can be won in
  total at this node of this flow); ``lose_weight`` is the relative chance of winning nothing.
- The draw is deterministic per idempotency key: the ticket is a hash of ``ctx.key``, so a
  retried activity draws exactly what the first attempt drew. No ``random`` anywhere.
- A prize whose budget is used up leaves the draw; the other weights keep their proportions.
- Budgets hold under concurrency: the draw takes a lock for this flow node first
  (``pg_advisory_xact_lock`` on PostgreSQL, the write lock on SQLite), then counts the prizes
  already won from the idempotency ledger, in the same transaction that records this draw.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from engine.sdk import ActionContext, ActionResult, LedgerEntry, NodeConfig, action, hold_lock
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

TYPE = "plugin.lottery"


class Prize(NodeConfig):
    name: str = Field(min_length=1, max_length=60, description="prize name, e.g. 一等奖 or coupon-50",
                      examples=["一等奖"])
    label: str | None = Field(default=None, max_length=120,
                              description="what the customer is told (vars.prize_name); default: the name")
    weight: int = Field(ge=0, le=1_000_000, description="relative chance of drawing this prize")
    budget: int = Field(ge=0, le=100_000_000, description="how many of this prize can be won in total at this node")


class LotteryConfig(NodeConfig):
    prizes: list[Prize] = Field(min_length=1, max_length=50, description="the prizes to draw from")
    lose_weight: int = Field(default=0, ge=0, le=1_000_000, description="relative chance of winning nothing")

    @model_validator(mode="after")
    def _sane(self) -> LotteryConfig:
        names = [p.name for p in self.prizes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"prize names must be unique; {', '.join(twice)} appears more than once")
        if self.lose_weight + sum(p.weight for p in self.prizes) == 0:
            raise ValueError("all weights are 0: give a prize or lose_weight a weight above 0")
        return self


# -- the maths: pure, no I/O --------------------------------------------------------------------------------
def ticket(key: str, total: int) -> int:
    """A number in [0, total) from the idempotency key: the same key always draws the same ticket."""
    digest = hashlib.sha256(f"{TYPE}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def pick(drawn: int, prizes: Sequence[tuple[str, int]], lose_weight: int) -> str | None:
    """The prize at ticket ``drawn`` of ``sum(weights) + lose_weight`` (None: no prize)."""
    for name, weight in prizes:
        if drawn < weight:
            return name
        drawn -= weight
    return None


# -- the budget: counted from the idempotency ledger ----------------------------------------------------------
def scope_of(flow_id: str, node_id: str) -> str:
    return f"{flow_id}/{node_id}"


def prizes_won(db: Session, scope: str) -> Counter[str]:
    """How many of each prize this flow node has given out (its recorded draws in the ledger)."""
    prize = LedgerEntry.result["variables"]["prize"].as_string()
    rows = db.scalars(select(prize).where(LedgerEntry.kind == TYPE,
                                          LedgerEntry.result["detail"]["scope"].as_string() == scope,
                                          prize.is_not(None)))
    return Counter(str(name) for name in rows)


@action(TYPE, label={"zh-CN": "抽奖", "en": "Lottery draw"},
        description={"zh-CN": "按权重抽奖，每个奖品有总数预算；中奖走 won，未中奖走 lost",
                     "en": "Weighted lottery draw with a prize budget; leaves by won or lost"},
        config=LotteryConfig, ports=("won", "lost"), kinds=("journey",))
def Lottery(ctx: ActionContext, config: LotteryConfig) -> ActionResult:
    """Draw a prize for this customer; sets vars.prize (the name) and vars.prize_name (the label)."""
    scope = scope_of(ctx.flow_id, ctx.node_id)
    hold_lock(ctx, f"{TYPE}:{scope}")  # before counting: racing draws at this node wait here
    won = prizes_won(ctx.db, scope)
    left = [p for p in config.prizes if p.weight > 0 and won[p.name] < p.budget]
    total = config.lose_weight + sum(p.weight for p in left)
    drawn = ticket(ctx.key, total) if total > 0 else 0
    name = pick(drawn, [(p.name, p.weight) for p in left], config.lose_weight) if total > 0 else None
    prize = next((p for p in left if p.name == name), None)
    detail = {"scope": scope, "ticket": drawn, "of": total, "prize": name,
              "exhausted": [p.name for p in config.prizes if won[p.name] >= p.budget]}
    if prize is None:
        return ActionResult(port="lost", variables={"prize": None, "prize_name": None}, detail=detail)
    return ActionResult(port="won", variables={"prize": prize.name, "prize_name": prize.label or prize.name},
                        detail=detail)
