"""settlement.collect: a period's sales per party, aggregated in SQL from the canonical order table.

One ``GROUP BY`` over ``orders`` (sales and order counts) and one over ``refunds ⋈ orders`` (refunds
completed within the period, for orders of the period) — never a Python loop over orders, so a million
orders take seconds. Refunds completed in this period for orders of an *earlier, settled* period are
collected as clawbacks against that period's run (:func:`collect_clawbacks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from activities.settlement.settlement_plan import SettlementPlan, is_party_ref
from engine.db import models


@dataclass
class Group:
    """The sales of one group of orders: one party (per channel, when rates depend on it), and for a
    split plan one combination of the split's parties."""

    party: str
    channel: str | None
    roles: dict[str, str]
    gross_fen: int = 0
    refunded_fen: int = 0
    order_count: int = 0

    @property
    def sales_fen(self) -> int:
        return max(0, self.gross_fen - self.refunded_fen)

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return self.party, self.channel or "", tuple(sorted(self.roles.items()))

    def as_json(self) -> dict[str, Any]:
        return {"party": self.party, "channel": self.channel, "roles": dict(self.roles),
                "gross_fen": self.gross_fen, "refunded_fen": self.refunded_fen, "sales_fen": self.sales_fen,
                "order_count": self.order_count}


@dataclass
class Collected:
    groups: list[Group] = field(default_factory=list)
    #: orders of the period whose party could not be read (e.g. no ``attribution.agent``)
    unattributed_orders: int = 0
    unattributed_fen: int = 0


def party_column(ref: str) -> ColumnElement[Any]:
    """The SQL expression for ``"shop"`` or ``"attribution.<role>"``."""
    if ref == "shop":
        return models.Order.__table__.c.shop
    return models.Order.attribution[ref.split(".", 1)[1]].as_string()


def _split_refs(plan: SettlementPlan) -> list[tuple[str, str]]:
    """Split parties read from orders: (split party, "shop" | "attribution.<role>"), in a fixed order."""
    return [(role, ref) for role, ref in sorted(plan.split_parties.items()) if is_party_ref(ref)]


def _key_columns(plan: SettlementPlan) -> list[ColumnElement[Any]]:
    """What a group is: the party, the channel (when a rate depends on it), the split's parties."""
    columns: list[ColumnElement[Any]] = [party_column(plan.party)]
    if plan.by_channel:
        columns.append(models.Order.__table__.c.channel)
    columns.extend(party_column(ref) for _, ref in _split_refs(plan))
    return columns


def _order_filter(plan: SettlementPlan, starts_at: datetime, ends_at: datetime) -> ColumnElement[bool]:
    conditions = [models.Order.paid_at >= starts_at, models.Order.paid_at < ends_at,
                  models.Order.status.in_(plan.statuses)]
    if plan.channels is not None:
        conditions.append(models.Order.channel.in_(plan.channels))
    return and_(*conditions)


def _refund_join() -> ColumnElement[bool]:
    return and_(models.Refund.channel == models.Order.channel, models.Refund.shop == models.Order.shop,
                models.Refund.order_id == models.Order.order_id)


def _make_group(plan: SettlementPlan, row: Sequence[Any]) -> Group | None:
    role_names = [role for role, _ in _split_refs(plan)]
    party = row[0]
    offset = 2 if plan.by_channel else 1
    channel = row[1] if plan.by_channel else None
    roles: dict[str, str] = {}
    values = list(row[offset:offset + len(role_names)])
    for role, value in zip(role_names, values, strict=True):
        if value is None or value == "":
            return None
        roles[role] = str(value)
    for role, ref in plan.split_parties.items():
        if not is_party_ref(ref):
            roles[role] = ref
    if party is None or party == "":
        return None
    return Group(party=str(party), channel=None if channel is None else str(channel), roles=roles)


def collect_sales(db: Session, plan: SettlementPlan, starts_at: datetime, ends_at: datetime) -> Collected:
    """Sales per group for orders paid in ``[starts_at, ends_at)``, less refunds completed by ``ends_at``."""
    keys = _key_columns(plan)
    sales = db.execute(select(*keys, func.sum(models.Order.amount_fen), func.count())
                       .where(_order_filter(plan, starts_at, ends_at)).group_by(*keys)).all()
    refunds = db.execute(select(*keys, func.sum(models.Refund.amount_fen))
                         .select_from(models.Refund).join(models.Order, _refund_join())
                         .where(_order_filter(plan, starts_at, ends_at), models.Refund.status == "completed",
                                # a refund completes after its order was paid: the lower bound changes no
                                # result, but lets the database start from the (few) refunds of the period
                                # instead of probing refunds for each of the period's orders
                                models.Refund.completed_at >= starts_at, models.Refund.completed_at < ends_at)
                         .group_by(*keys)).all()
    width = len(keys)
    result = Collected()
    groups: dict[tuple[Any, ...], Group] = {}
    for row in sales:
        group = _make_group(plan, row[:width])
        gross, count = int(row[width] or 0), int(row[width + 1] or 0)
        if group is None:
            result.unattributed_orders += count
            result.unattributed_fen += gross
            continue
        found = groups.setdefault(group.key, group)
        found.gross_fen += gross
        found.order_count += count
    for row in refunds:
        group = _make_group(plan, row[:width])
        if group is None or group.key not in groups:
            continue
        groups[group.key].refunded_fen += int(row[width] or 0)
    result.groups = sorted(groups.values(), key=lambda group: group.key)
    return result


@dataclass
class LateRefunds:
    """Refunds completed in this period against one group of an earlier period."""

    group: Group
    refunded_fen: int
    previously_refunded_fen: int
    refund_count: int


def collect_late_refunds(db: Session, plan: SettlementPlan, original_starts: datetime, original_ends: datetime,
                         starts_at: datetime, ends_at: datetime) -> list[LateRefunds]:
    """Refunds completed in ``[starts_at, ends_at)`` for orders of the earlier period
    ``[original_starts, original_ends)``, grouped as that period's plan grouped them; with what was
    refunded between the two (already clawed back by the periods in between)."""
    keys = _key_columns(plan)
    now = case((models.Refund.completed_at >= starts_at, models.Refund.amount_fen), else_=0)
    before = case((models.Refund.completed_at < starts_at, models.Refund.amount_fen), else_=0)
    counted = case((models.Refund.completed_at >= starts_at, 1), else_=0)
    rows = db.execute(select(*keys, func.sum(now), func.sum(before), func.sum(counted))
                      .select_from(models.Refund).join(models.Order, _refund_join())
                      .where(_order_filter(plan, original_starts, original_ends),
                             models.Refund.status == "completed", models.Refund.completed_at >= original_ends,
                             models.Refund.completed_at < ends_at)
                      .group_by(*keys)).all()
    width = len(keys)
    found: list[LateRefunds] = []
    for row in rows:
        group = _make_group(plan, row[:width])
        refunded = int(row[width] or 0)
        if group is None or refunded <= 0:
            continue
        found.append(LateRefunds(group=group, refunded_fen=refunded, previously_refunded_fen=int(row[width + 1] or 0),
                                 refund_count=int(row[width + 2] or 0)))
    return sorted(found, key=lambda late: late.group.key)


def earliest_late_refund(db: Session, plan: SettlementPlan, starts_at: datetime, ends_at: datetime) -> datetime | None:
    """When the earliest order refunded in ``[starts_at, ends_at)`` but paid before ``starts_at`` was paid."""
    value: datetime | None = db.scalar(
        select(func.min(models.Order.paid_at)).select_from(models.Refund).join(models.Order, _refund_join())
        .where(models.Refund.status == "completed", models.Refund.completed_at >= starts_at,
               models.Refund.completed_at < ends_at, models.Order.paid_at < starts_at))
    if value is not None and value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value
