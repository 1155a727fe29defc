"""Orders from a CSV file into the canonical order table, for ``tideflow settle --orders`` and tests.

Columns (a header row is required; unknown columns are an error, order does not matter):

======================  ========================================================================
``order_id``            required, unique per channel and shop
``party``               the earning party; stored where the plan reads it (``shop`` or
                        ``attribution.<role>``). Or give ``shop`` and ``attribution.<role>`` columns.
``shop``, ``channel``   optional (default ``csv``)
``attribution.<role>``  e.g. ``attribution.agent``, ``attribution.anchor``, ``attribution.agency``
``amount_fen``          integer fen — or ``amount``: yuan as a decimal string (``"123.45"``)
``paid_at``             ``2026-11-03T14:20:00+08:00``, or without offset / a bare date: plan timezone
``status``              default ``paid`` (created, paid, shipped, delivered, completed, cancelled, refunded)
``refund_fen``          a completed refund, in fen — or ``refund``: yuan. With ``refunded_at`` (when
                        it completed; default: at ``paid_at``)
======================  ========================================================================
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session

from activities.settlement.errors import SettlementInputError
from activities.settlement.money import parse_yuan
from activities.settlement.settlement_plan import SettlementPlan
from engine.db import models

KNOWN: Final = {"order_id", "party", "shop", "channel", "amount_fen", "amount", "paid_at", "status", "refund_fen",
                "refund", "refunded_at", "customer_id"}


def _when(text: str, zone: ZoneInfo, what: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SettlementInputError(f"{what} {text!r} is not a time; write 2026-11-03T14:20:00+08:00 or "
                                   f"2026-11-03") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _fen(row: dict[str, str], fen_column: str, yuan_column: str, what: str) -> int | None:
    fen_text, yuan_text = (row.get(fen_column) or "").strip(), (row.get(yuan_column) or "").strip()
    if fen_text and yuan_text:
        raise SettlementInputError(f"{what}: give {fen_column} or {yuan_column}, not both")
    if fen_text:
        if not fen_text.lstrip("-").isdigit():
            raise SettlementInputError(f"{what}: {fen_column} {fen_text!r} is not a whole number of fen; "
                                       f"write e.g. 12345, or use the {yuan_column} column for yuan")
        return int(fen_text)
    if yuan_text:
        return parse_yuan(yuan_text, what=f"{what}: {yuan_column}")
    return None


def load_orders_csv(db: Session, text: str, plan: SettlementPlan, *, source: str = "csv") -> int:
    """Insert the file's orders (and refunds) into ``orders`` / ``refunds``; the number of orders."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in KNOWN and not name.startswith("attribution.")]
    if unknown:
        raise SettlementInputError(f"orders CSV: column {unknown[0]!r} is unknown; use order_id, party or shop or "
                                   f"attribution.<role>, amount_fen or amount, paid_at, status, refund_fen or "
                                   f"refund, refunded_at")
    if "order_id" not in header:
        raise SettlementInputError("orders CSV: the header has no order_id column; add it")
    if "amount_fen" not in header and "amount" not in header:
        raise SettlementInputError("orders CSV: add an amount_fen (fen) or amount (yuan) column")
    zone = ZoneInfo(plan.timezone)
    orders: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    from connectors.canonical import ORDER_STATUSES

    for number, row in enumerate(reader, start=2):
        where = f"orders CSV line {number}"
        order_id = (row.get("order_id") or "").strip()
        if not order_id:
            raise SettlementInputError(f"{where}: order_id is empty")
        amount = _fen(row, "amount_fen", "amount", where)
        if amount is None or amount < 0:
            raise SettlementInputError(f"{where}: the amount is missing or negative")
        status = (row.get("status") or "paid").strip()
        if status not in ORDER_STATUSES:
            raise SettlementInputError(f"{where}: status {status!r} is unknown; use one of {', '.join(ORDER_STATUSES)}")
        paid_text = (row.get("paid_at") or "").strip()
        paid_at = _when(paid_text, zone, f"{where}: paid_at") if paid_text else None
        attribution = {name.split(".", 1)[1]: value.strip() for name, value in row.items()
                       if name and name.startswith("attribution.") and value and value.strip()}
        shop = (row.get("shop") or "").strip()
        party = (row.get("party") or "").strip()
        if party:
            if plan.party == "shop":
                shop = shop or party
            else:
                attribution.setdefault(plan.party.split(".", 1)[1], party)
        channel = (row.get("channel") or "").strip() or "csv"
        shop = shop or "csv"
        orders.append({"channel": channel, "shop": shop, "order_id": order_id, "source": source,
                       "customer_id": (row.get("customer_id") or "").strip() or None, "status": status,
                       "amount_fen": amount, "refunded_fen": 0, "currency": "CNY", "items": [],
                       "attribution": attribution, "created_at": paid_at, "paid_at": paid_at,
                       "updated_at": paid_at or models.utcnow()})
        refund = _fen(row, "refund_fen", "refund", where)
        if refund:
            if refund < 0 or refund > amount:
                raise SettlementInputError(f"{where}: the refund must be between 0 and the order's amount")
            refunded_text = (row.get("refunded_at") or "").strip()
            refunded_at = _when(refunded_text, zone, f"{where}: refunded_at") if refunded_text else paid_at
            orders[-1]["refunded_fen"] = refund
            refunds.append({"channel": channel, "shop": shop, "refund_id": f"{order_id}-r", "order_id": order_id,
                            "source": source, "customer_id": None, "status": "completed", "amount_fen": refund,
                            "reason": "", "requested_at": refunded_at or models.utcnow(),
                            "completed_at": refunded_at, "updated_at": refunded_at or models.utcnow()})
    if orders:
        db.execute(insert(models.Order), orders)
    if refunds:
        db.execute(insert(models.Refund), refunds)
    return len(orders)
