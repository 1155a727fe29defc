"""Orders from a CSV file into the canonical order table, for ``tideflow settle --orders`` and tests.

Columns (a header row is required; unknown columns are an error, order does not matter):

======================  ========================================================================
``order_id``            required, unique per channel and shop
``party``               the earning party; stored where the plan reads it (``shop`` or
                        ``attribution.<role>``). Or give ``shop`` and ``attribution.<role>`` columns.
``shop``, ``channel``   optional (default ``csv``)
``attribution.<role>``  e.g. ``attribution.agent``, ``attribution.anchor``, ``attribution.agency``
``amount_fen``          integer fen — or ``amount``: yuan as a decimal string (``"123.45"``)
``paid_at``             required: ``2026-11-03T14:20:00+08:00``, or without offset / a bare date: plan
                        timezone
``status``              default ``paid`` (created, paid, shipped, delivered, completed, cancelled, refunded)
``refund_fen``          a completed refund, in fen — or ``refund``: yuan. With ``refunded_at`` (when
                        it completed; default: at ``paid_at``)
======================  ========================================================================

The whole file is checked before anything is settled (:func:`read_orders_csv`): the required columns, then
every row — each problem with its line number. Any problem refuses the file (:class:`OrdersFileError`)
unless the caller asks to skip the invalid rows (``tideflow settle --skip-invalid``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.orm import Session

from activities.settlement.errors import SettlementError, SettlementInputError
from activities.settlement.money import parse_yuan
from activities.settlement.settlement_plan import SettlementPlan
from engine.db import models
from engine.text import Msg, joined

KNOWN: Final = {"order_id", "party", "shop", "channel", "amount_fen", "amount", "paid_at", "status", "refund_fen",
                "refund", "refunded_at", "customer_id"}


def _when(text: str, zone: ZoneInfo, what: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SettlementInputError(Msg("%(what)s '%(text)s' is not a time; write 2026-11-03T14:20:00+08:00 or "
                                       "2026-11-03",
                                       what=what, text=text)) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _fen(row: dict[str, Any], fen_column: str, yuan_column: str, what: str) -> int | None:
    fen_text, yuan_text = (row.get(fen_column) or "").strip(), (row.get(yuan_column) or "").strip()
    if fen_text and yuan_text:
        raise SettlementInputError(Msg("%(what)s: give %(fen_column)s or %(yuan_column)s, not both",
                                       what=what, fen_column=fen_column, yuan_column=yuan_column))
    if fen_text:
        if not fen_text.lstrip("-").isdigit():
            raise SettlementInputError(Msg("%(what)s: %(fen_column)s '%(fen_text)s' is not a whole number of fen; "
                                           "write e.g. 12345, or use the %(yuan_column)s column for yuan",
                                           what=what, fen_column=fen_column, fen_text=fen_text,
                                           yuan_column=yuan_column))
        return int(fen_text)
    if yuan_text:
        return parse_yuan(yuan_text, what=f"{what}: {yuan_column}")
    return None


class OrdersFileError(SettlementInputError):
    """The orders file has problems: ``problems`` lists ``(line, message)`` for every one of them (line 0: the
    header). Nothing was settled."""

    def __init__(self, problems: list[tuple[int, str]], good_rows: int = 0) -> None:
        self.problems = problems
        self.good_rows = good_rows
        lines = [Msg("  line %(line)s: %(message)s", line=line, message=message) if line else
                 Msg("  header: %(message)s", message=message) for line, message in problems]
        n = len(problems)  # Msg has no plural forms: the count's noun is a Msg of its own (translated as a value)
        counted = Msg("%(count)s problem", count=n) if n == 1 else Msg("%(count)s problems", count=n)
        good = Msg("%(count)s good row", count=good_rows) if good_rows == 1 else \
            Msg("%(count)s good rows", count=good_rows)
        super().__init__(Msg("orders CSV: %(problems)s, nothing settled (%(good)s); fix the file, or settle the good "
                             "rows with --skip-invalid:\n%(lines)s",
                             problems=counted, good=good, lines=joined(lines)))


@dataclass
class OrdersFile:
    """A checked orders file: the rows that are good, and every problem with its line number."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def skipped_lines(self) -> list[int]:
        return sorted({line for line, _ in self.problems if line})


def _party_columns(plan: SettlementPlan) -> tuple[str, ...]:
    """The columns that can say who earns on an order under ``plan``."""
    return ("party", plan.party) if plan.party != "shop" else ("party", "shop")


def read_orders_csv(text: str, plan: SettlementPlan, *, source: str = "csv") -> OrdersFile:
    """Check the whole file: the header (required columns, unknown ones) and every row (order id, amount,
    paid_at, status, party, refund, duplicates). Returns the good rows and all problems; raises nothing for
    a row, :class:`OrdersFileError` for a header that makes every row unreadable."""
    from connectors.canonical import ORDER_STATUSES

    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    problems: list[tuple[int, str]] = []
    unknown = [name for name in header if name not in KNOWN and not name.startswith("attribution.")]
    if unknown:
        problems.append((0, f"column {unknown[0]!r} is unknown; use order_id, party or shop or attribution.<role>, "
                            "amount_fen or amount, paid_at, status, channel, refund_fen or refund, refunded_at"))
    if not header:
        problems.append((0, "the file is empty: it needs a header row (order_id,party,amount,paid_at)"))
    elif "order_id" not in header:
        problems.append((0, "the header has no order_id column; add it"))
    if header and "amount_fen" not in header and "amount" not in header:
        problems.append((0, "add an amount_fen (fen) or amount (yuan) column"))
    if header and "paid_at" not in header:
        problems.append((0, "the header has no paid_at column: without it no order falls in any period; add it "
                            "(2026-10-03T14:20:00+08:00, or a date in the plan's timezone)"))
    wanted = _party_columns(plan)
    if header and not any(column in header for column in wanted):
        problems.append((0, f"the plan pays {plan.party}, and the header has no column saying who that is; add "
                            f"a {' or '.join(repr(c) for c in wanted)} column"))
    if problems:
        raise OrdersFileError(problems)
    zone = ZoneInfo(plan.timezone)
    checked = OrdersFile()
    seen: dict[tuple[str, str, str], int] = {}
    for number, row in enumerate(reader, start=2):
        before = len(problems)

        def bad(message: str, number: int = number) -> None:
            problems.append((number, message))

        if None in row:  # more cells than the header has columns
            bad(f"{len(row[None]) if isinstance(row[None], list) else 1} cell(s) more than the header's columns")
        order_id = (row.get("order_id") or "").strip()
        if not order_id:
            bad("order_id is empty")
        amount: int | None = None
        try:
            amount = _fen(row, "amount_fen", "amount", "the amount")
            if amount is None:
                bad("the amount is empty")
            elif amount < 0:
                bad(f"the amount {amount} fen is negative; a refund goes in the refund column")
        except SettlementError as exc:
            bad(str(exc))
        status = (row.get("status") or "paid").strip()
        if status not in ORDER_STATUSES:
            bad(f"status {status!r} is unknown; use one of {', '.join(ORDER_STATUSES)}")
        paid_text = (row.get("paid_at") or "").strip()
        paid_at = None
        if not paid_text:
            bad("paid_at is empty: the order would fall in no period; give when it was paid")
        else:
            try:
                paid_at = _when(paid_text, zone, "paid_at")
            except SettlementError as exc:
                bad(str(exc))
        attribution = {name.split(".", 1)[1]: value.strip() for name, value in row.items()
                       if name and name.startswith("attribution.") and isinstance(value, str) and value.strip()}
        shop = (row.get("shop") or "").strip()
        party = (row.get("party") or "").strip()
        if party:
            if plan.party == "shop":
                shop = shop or party
            else:
                attribution.setdefault(plan.party.split(".", 1)[1], party)
        earner = shop if plan.party == "shop" else attribution.get(plan.party.split(".", 1)[1], "")
        if not earner:
            bad(f"no party: the {' or '.join(c for c in wanted if c in header)} cell is empty, so the order "
                "would earn no one")
        channel = (row.get("channel") or "").strip() or "csv"
        shop = shop or "csv"
        key = (channel, shop, order_id)
        if order_id and key in seen:
            bad(f"order {order_id} (channel {channel}, shop {shop}) is also on line {seen[key]}; an order is "
                "listed once — put its refund in the refund column")
        elif order_id:
            seen[key] = number
        refund: int | None = None
        refunded_at = paid_at
        try:
            refund = _fen(row, "refund_fen", "refund", "the refund")
            refunded_text = (row.get("refunded_at") or "").strip()
            if refunded_text:
                refunded_at = _when(refunded_text, zone, "refunded_at")
        except SettlementError as exc:
            bad(str(exc))
        if refund and amount is not None and (refund < 0 or refund > amount):
            bad("the refund must be between 0 and the order's amount")
        if len(problems) > before or amount is None:
            continue
        checked.orders.append({"channel": channel, "shop": shop, "order_id": order_id, "source": source,
                               "customer_id": (row.get("customer_id") or "").strip() or None, "status": status,
                               "amount_fen": amount, "refunded_fen": refund or 0, "currency": "CNY", "items": [],
                               "attribution": attribution, "created_at": paid_at, "paid_at": paid_at,
                               "updated_at": paid_at or models.utcnow()})
        if refund:
            checked.refunds.append({"channel": channel, "shop": shop, "refund_id": f"{order_id}-r",
                                    "order_id": order_id, "source": source, "customer_id": None,
                                    "status": "completed", "amount_fen": refund, "reason": "",
                                    "requested_at": refunded_at or models.utcnow(), "completed_at": refunded_at,
                                    "updated_at": refunded_at or models.utcnow()})
    checked.problems = problems
    return checked


def load_orders_csv(db: Session, text: str, plan: SettlementPlan, *, source: str = "csv",
                    skip_invalid: bool = False) -> OrdersFile:
    """Check the whole file, then insert its orders (and refunds) into ``orders`` / ``refunds``.

    Any problem raises :class:`OrdersFileError` listing every one with its line, and nothing is inserted —
    unless ``skip_invalid``: then the good rows are inserted and the problems come back in the result."""
    checked = read_orders_csv(text, plan, source=source)
    if checked.problems and not skip_invalid:
        raise OrdersFileError(checked.problems, len(checked.orders))
    if checked.orders:
        db.execute(insert(models.Order), checked.orders)
    if checked.refunds:
        db.execute(insert(models.Refund), checked.refunds)
    return checked
