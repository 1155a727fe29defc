"""Points maths (积分): earning by rule, expiry dates, first-in-first-out burning and refund
reversals. Pure: no I/O — activities/loyalty/ledger.py applies the results under a row lock.

* **earn** — ``floor(amount in yuan × points per yuan × tier multiplier × campaign multiplier) +
  bonus``, computed in integers from fen (a cent never becomes a float).
* **expiry** — each earn is a *lot* with its own expiry, by the program's rule:
  ``end_of_next_year`` (31 Dec 23:59:59 of the year after earning, local time — a common Chinese
  retail rule), ``days:N`` (N days after earning), ``months:N`` (end of the N-th month after) or
  ``never``.
* **burn** — a redemption takes points from the lots that expire first (then the oldest), so points
  about to lapse are used before fresh ones.
* **reverse** — a refund takes back ``floor(earned × refunded ÷ paid)`` in all, so partial refunds
  add up to exactly the order's points and never more; what was already spent leaves a debt that
  the next earn repays.
* **give back** — a cancelled redemption returns its points to the lots it took them from, each lot
  keeping its own expiry; points of a lot that has expired since are not revived, and the returned
  points repay a debt first (as an earn does), the soonest-expiring first.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

from engine.text import Msg

_RULE = re.compile(r"^(never|end_of_next_year|days:[1-9]\d{0,4}|months:[1-9]\d{0,2})$")


def check_rule(rule: str) -> str:
    if not _RULE.match(rule):
        raise ValueError(Msg("unknown expiry rule '%(rule)s'; use never, end_of_next_year, days:N "
                             "or months:N",
                             rule=rule))
    return rule


def expiry(earned_at: datetime, rule: str, timezone: str = "Asia/Shanghai") -> datetime | None:
    """When a lot earned at ``earned_at`` expires (the instant it is no longer spendable)."""
    check_rule(rule)
    if earned_at.tzinfo is None:
        raise ValueError(Msg("earned_at must be timezone-aware"))
    if rule == "never":
        return None
    local = earned_at.astimezone(ZoneInfo(timezone))
    if rule == "end_of_next_year":
        return local.replace(year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    kind, n = rule.split(":")
    if kind == "days":
        return earned_at + timedelta(days=int(n))
    months = local.month - 1 + int(n) + 1  # the month after the N-th month's end
    year, month = local.year + months // 12, months % 12 + 1
    return local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def earned_points(amount_fen: int, points_per_yuan: Decimal | int | str, *, tier_multiplier: Decimal | str = "1",
                  campaign_multiplier: Decimal | str = "1", bonus: int = 0) -> int:
    """Points for spending ``amount_fen``: whole points, rounded down."""
    if amount_fen < 0:
        raise ValueError(Msg("amount_fen must not be negative"))
    exact = (Decimal(amount_fen) / 100 * Decimal(str(points_per_yuan)) * Decimal(str(tier_multiplier))
             * Decimal(str(campaign_multiplier)))
    return int(exact.to_integral_value(rounding=ROUND_FLOOR)) + bonus


def reversal(earned: int, paid_fen: int, refunded_total_fen: int, already_reversed: int) -> int:
    """Points to take back now, when the order's completed refunds reach ``refunded_total_fen``."""
    if paid_fen <= 0 or earned <= 0:
        return 0
    refunded = min(max(refunded_total_fen, 0), paid_fen)
    due = earned * refunded // paid_fen
    return max(0, due - already_reversed)


@dataclass(frozen=True)
class Lot:
    id: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None


def burn_order(lots: Sequence[Lot]) -> list[Lot]:
    """Lots in the order a burn takes them: soonest expiry first (never-expiring last), then oldest."""
    far = datetime.max.replace(tzinfo=None)
    return sorted((lot for lot in lots if lot.remaining > 0),
                  key=lambda lot: ((lot.expires_at.replace(tzinfo=None) if lot.expires_at else far),
                                   lot.earned_at.replace(tzinfo=None), lot.id))


def allocate(lots: Sequence[Lot], points: int, now: datetime, *,
             prefer: int | None = None) -> tuple[dict[int, int], int]:
    """Take ``points`` from spendable lots (not expired at ``now``): lot id → points taken, and the
    shortfall. ``prefer`` (a lot id) is taken from first — a refund reverses its own order's lot."""
    if points < 0:
        raise ValueError(Msg("points must not be negative"))
    usable = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
    ordered = burn_order(usable)
    if prefer is not None:
        ordered.sort(key=lambda lot: lot.id != prefer)
    taken: dict[int, int] = {}
    left = points
    for lot in ordered:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take:
            taken[lot.id] = take
            left -= take
    return taken, left


@dataclass(frozen=True)
class GiveBack:
    """How a cancelled redemption's points go back: ``restored`` (lot id → points put back in that lot),
    ``lapsed`` (lot id → points not revived: the lot has expired since) and ``repaid`` (points that paid
    the member's debt instead of going back to a lot)."""

    restored: dict[int, int]
    lapsed: dict[int, int]
    repaid: int

    @property
    def returned(self) -> int:
        """What the member gets back: the points restored to lots plus the debt they repaid."""
        return sum(self.restored.values()) + self.repaid


def give_back(taken: Mapping[int, int], lots: Sequence[Lot], now: datetime, debt: int = 0, *,
              closed: Collection[int] = ()) -> GiveBack:
    """Split the points a redemption ``taken`` (lot id → points, the burn's record) back over those lots.

    A lot that has expired at ``now`` — or whose expiry is already booked (``closed``) — gets nothing
    back: its points lapse, as they would have had they never been spent. The rest repay ``debt`` first,
    taken from the lots that expire soonest (the order a burn spends in), so the member keeps the
    longest-lived points; what is left goes back to each lot."""
    if debt < 0 or any(n < 0 for n in taken.values()):
        raise ValueError(Msg("points and debt must not be negative"))
    known = {lot.id: lot for lot in lots}
    missing = sorted(set(taken) - set(known))
    if missing:
        raise ValueError(Msg("lots %(ids)s are unknown", ids=", ".join(map(str, missing))))
    lapsed: dict[int, int] = {}
    alive: list[Lot] = []
    for lot_id, n in taken.items():
        if n == 0:
            continue
        lot = known[lot_id]
        if lot_id in closed or (lot.expires_at is not None and lot.expires_at <= now):
            lapsed[lot_id] = n
        else:
            alive.append(Lot(lot_id, n, lot.earned_at, lot.expires_at))
    restored: dict[int, int] = {}
    owed = debt
    for lot in burn_order(alive):
        repay = min(owed, lot.remaining)
        owed -= repay
        if lot.remaining - repay:
            restored[lot.id] = lot.remaining - repay
    return GiveBack(restored, lapsed, debt - owed)


def expiring(lots: Sequence[Lot], now: datetime) -> list[Lot]:
    """Lots that have expired at ``now`` and still hold points."""
    return [lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now]

