"""Sample orders that show what a settlement plan pays, for the rate-plan editor's preview.

:func:`sample_orders` writes a small orders CSV (the format of :mod:`activities.settlement.orders_csv`) for
one period of the plan's cycle: a few parties whose sales land *on* and *around* every tier boundary of
the rate plan (so the boundary rule — at least / above — and each tier show), on two channels, with the
attribution columns a split needs. :func:`preview_period` is the period the preview settles: the one the
first order falls in. The preview itself is :func:`activities.settlement.command.dry_run` — the same
engine as a kept run, in a throwaway database. Pure, apart from reading the CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo

from activities.settlement.orders_csv import OrdersFileError, read_orders_csv
from activities.settlement.periods import Period, period_containing, period_to_settle
from activities.settlement.plans import CompositionPlan, GuaranteedPlan, KpiCoefficientPlan, SplitPlan, TieredPlan
from activities.settlement.settlement_plan import SettlementPlan
from engine.text import Msg

#: sales when the plan has no tier boundary to show: a small and a large party
_PLAIN = (1_234_567, 8_800_000)


def _plans(plan: object) -> Iterator[object]:
    yield plan
    if isinstance(plan, CompositionPlan):
        for component in plan.components:
            yield from _plans(component)
    if isinstance(plan, KpiCoefficientPlan):
        yield from _plans(plan.inner)
    if isinstance(plan, SplitPlan) and plan.of is not None:
        yield from _plans(plan.of)


def boundaries(plan: SettlementPlan) -> list[int]:
    """Every sales amount (fen) at which the rate plan changes: tier starts, guarantee thresholds."""
    found: set[int] = set()
    for part in _plans(plan.rate_plan):
        if isinstance(part, TieredPlan):
            found.update(t.from_fen for t in part.tiers)
        if isinstance(part, GuaranteedPlan):
            found.add(part.threshold_fen)
            found.update(part.threshold_fen + t.from_fen for t in part.tiers)
    return sorted(b for b in found if b > 0)


def sample_sales(plan: SettlementPlan) -> list[int]:
    """One period's sales per sample party: exactly on the first boundary, between boundaries, above the last."""
    edges = boundaries(plan)[:3]
    if not edges:
        return list(_PLAIN)
    sales = [edges[0]]
    for low, high in zip(edges, [*edges[1:], None], strict=True):
        sales.append((low + high) // 2 if high is not None else low + low // 5)
    return sales[:4]


def _parties(plan: SettlementPlan, count: int) -> list[str]:
    """The parties of the directory (party_types) first, then made-up ids (S01, A02 …)."""
    named = list(plan.party_types)[:count]
    prefix = "S0" if plan.party == "shop" else plan.party.split(".", 1)[1] + "-"
    return named + [f"{prefix}{n}" for n in range(len(named) + 1, count + 1)]


def sample_orders(plan: SettlementPlan, today: date) -> str:
    """Orders of the last complete period before ``today``: two per party (two channels), adding up to
    :func:`sample_sales`; amounts in yuan."""
    period = period_to_settle(plan.cycle, today)
    sales = sample_sales(plan)
    parties = _parties(plan, len(sales))
    split_columns = sorted({ref for ref in plan.split_parties.values() if ref.startswith("attribution.")}
                           - {plan.party})
    channels = [c for c in (plan.channels or ["youzan", "jd"]) if c != "csv"] or ["api"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["order_id", "party", "channel", "amount", "paid_at", *split_columns])
    number = 0
    for party, total in zip(parties, sales, strict=False):
        first = total * 3 // 5
        for part, channel in ((first, channels[0]), (total - first, channels[-1])):
            number += 1
            paid = period.start.isoformat() + "T10:00:00"
            extra = [f"{column.split('.', 1)[1]}-{number % 2 + 1}" for column in split_columns]
            writer.writerow([f"SAMPLE-{number:03d}", party, channel, f"{part // 100}.{part % 100:02d}", paid, *extra])
    return out.getvalue()


def preview_period(plan: SettlementPlan, orders_csv: str) -> Period:
    """The period a preview settles: the one the earliest order in the CSV falls in (local date). Raises the
    CSV's problems (:class:`activities.settlement.orders_csv.OrdersFileError`) when it cannot be read."""
    checked = read_orders_csv(orders_csv, plan)
    if checked.problems:  # a preview settles the whole sample or nothing: each problem with its line
        raise OrdersFileError(checked.problems, len(checked.orders))
    zone = ZoneInfo(plan.timezone)
    days = [o["paid_at"].astimezone(zone).date() for o in checked.orders if o.get("paid_at") is not None]
    if not days:
        from activities.settlement.errors import SettlementInputError

        raise SettlementInputError(Msg("the sample has no paid order: add rows with paid_at and an amount"))
    return period_containing(plan.cycle, min(days))
