"""The points ledger (积分账本): append-only, idempotent per source, with lots, FIFO burning, expiry,
refund reversals and tiers. Runs in the caller's transaction (an event hook's, an action's, an API call's).

Every change locks the member's :class:`LoyaltyAccount` row first (``FOR UPDATE`` on PostgreSQL; SQLite's
write transaction is exclusive) and looks its idempotency ``key`` up under that lock: a duplicate
callback, a retried activity or two concurrent requests with one key book once — the second gets the
first one's entry back (``repeated``). The ledger is never updated or deleted; lots' ``remaining`` and
the account's ``balance`` / ``debt`` are derived state kept in the same transaction.

``balance`` is the points in unexpired lots; ``debt`` is what refunds took back after the points were
spent (the next earn repays it first); what a member may spend is ``balance - debt``.

A redemption can be cancelled once (:func:`cancel_redemption`): its points go back to the lots they
were taken from, with those lots' own expiry; points of a lot that expired since are not revived.

Journeys hear about it through follow-up events: ``loyalty.points_earned``, ``loyalty.points_redeemed``
(from :func:`burn`), ``loyalty.redemption_cancelled`` (from :func:`cancel_redemption`),
``loyalty.tier_changed`` (``direction`` up/down) and ``loyalty.points_expiring`` (from
:func:`notify_expiring`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.loyalty import points, tiers
from activities.loyalty.program import ProgramConfig, load
from engine.customers import aliases, canonical
from engine.db import models
from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from engine.events import record_follow_up
from engine.text import Msg, MsgError

SOURCE = "loyalty"


class LoyaltyError(MsgError):
    """A ledger operation that cannot be done (not enough points, bad amount)."""


class InsufficientPoints(LoyaltyError):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__(Msg("%(wanted)s points wanted, %(available)s available",
                             wanted=wanted, available=available))
        self.wanted, self.available = wanted, available


class RedemptionNotFound(LoyaltyError):
    """No redemption of this member is booked under the key (none at all, another kind of entry, or
    another member's)."""

    def __init__(self, key: str) -> None:
        super().__init__(Msg("the member has no redemption '%(key)s'", key=key[:200]))
        self.key = key


@dataclass(frozen=True)
class Booked:
    entry: LoyaltyEntry
    repeated: bool

    @property
    def lapsed(self) -> int:
        """Of a cancellation: the points that did not come back because their lot had expired."""
        return sum(dict((self.entry.detail or {}).get("lapsed") or {}).values())



def account(db: Session, customer_id: str) -> LoyaltyAccount:
    """The surviving customer's account, locked; accounts of customers merged into it are folded in."""
    ids = aliases(db, customer_id)
    survivor = ids[0]
    row = db.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == survivor).with_for_update()
                    .execution_options(populate_existing=True))
    if row is None:
        try:
            with db.begin_nested():
                db.add(LoyaltyAccount(customer_id=survivor, balance=0, debt=0, lifetime_earned=0))
                db.flush()
        except IntegrityError:
            pass
        row = db.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == survivor).with_for_update()
                        .execution_options(populate_existing=True))
        assert row is not None
    for merged in ids[1:]:
        other = db.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == merged).with_for_update())
        if other is None:
            continue
        for lot in db.scalars(select(LoyaltyLot).where(LoyaltyLot.customer_id == merged)):
            lot.customer_id = survivor
        for entry in db.scalars(select(LoyaltyEntry).where(LoyaltyEntry.customer_id == merged)):
            entry.customer_id = survivor
        row.balance += other.balance
        row.debt += other.debt
        row.lifetime_earned += other.lifetime_earned
        db.delete(other)
        db.flush()
    return row


def _existing(db: Session, key: str) -> LoyaltyEntry | None:
    return db.scalar(select(LoyaltyEntry).where(LoyaltyEntry.key == key))


def _book(db: Session, acct: LoyaltyAccount, *, key: str, kind: str, pts: int, at: datetime, source_ref: str = "",
          reason: str = "", detail: dict[str, Any] | None = None) -> LoyaltyEntry:
    entry = LoyaltyEntry(customer_id=acct.customer_id, key=key, kind=kind, points=pts,
                         balance_after=acct.balance - acct.debt, source_ref=source_ref, reason=reason[:200],
                         detail=detail or {}, at=at)
    db.add(entry)
    db.flush()
    acct.updated_at = models.utcnow()
    return entry


def _lots(db: Session, customer_id: str) -> list[LoyaltyLot]:
    return list(db.scalars(select(LoyaltyLot).where(LoyaltyLot.customer_id == customer_id,
                                                    LoyaltyLot.remaining > 0)))


def earn(db: Session, customer_id: str, pts: int, key: str, at: datetime, *, reason: str, source_ref: str = "",
         detail: dict[str, Any] | None = None, program: ProgramConfig | None = None, notify: bool = True) -> Booked:
    """Add ``pts`` points as a new lot (expiring by the program's rule); a debt is repaid first."""
    if pts < 0:
        raise LoyaltyError(Msg("points to earn must not be negative"))
    acct = account(db, customer_id)
    found = _existing(db, key)
    if found is not None:
        return Booked(found, True)
    program = program or load(db)
    repay = min(acct.debt, pts)
    acct.debt -= repay
    acct.balance += pts - repay
    acct.lifetime_earned += pts
    entry = _book(db, acct, key=key, kind="earn", pts=pts, at=at, source_ref=source_ref, reason=reason,
                  detail={**(detail or {}), **({"debt_repaid": repay} if repay else {})})
    if pts - repay > 0:
        db.add(LoyaltyLot(customer_id=acct.customer_id, entry_id=entry.id, points=pts, remaining=pts - repay,
                          earned_at=at, expires_at=points.expiry(at, program.expiry_rule, program.timezone),
                          source_ref=source_ref))
        db.flush()
    if notify and pts > 0:
        record_follow_up(db, source=SOURCE, external_id=f"earned:{entry.id}", type="loyalty.points_earned",
                         customer_id=acct.customer_id, occurred_at=at,
                         payload={"points": pts, "balance": acct.balance - acct.debt, "reason": reason,
                                  "source": source_ref})
    check_tier(db, acct, at, program, allow_downgrade=False)
    return Booked(entry, False)


def burn(db: Session, customer_id: str, pts: int, key: str, at: datetime, *, reason: str,
         detail: dict[str, Any] | None = None, notify: bool = True) -> Booked:
    """Spend ``pts`` points (a redemption), from the lots that expire first. Raises
    :class:`InsufficientPoints` when the member has fewer. A fresh redemption records
    ``loyalty.points_redeemed`` in the same transaction (once per ``key``: a repeated one records nothing)."""
    if pts <= 0:
        raise LoyaltyError(Msg("points to redeem must be a positive whole number"))
    acct = account(db, customer_id)
    found = _existing(db, key)
    if found is not None:
        return Booked(found, True)
    lots = _lots(db, acct.customer_id)
    by_id = {lot.id: lot for lot in lots}
    usable = sum(lot.remaining for lot in lots if lot.expires_at is None or lot.expires_at > at)
    available = usable - acct.debt
    if pts > available:
        raise InsufficientPoints(pts, max(0, available))
    taken, _ = points.allocate([points.Lot(lot.id, lot.remaining, lot.earned_at, lot.expires_at) for lot in lots],
                               pts, at)
    for lot_id, n in taken.items():
        by_id[lot_id].remaining -= n
    acct.balance -= pts
    entry = _book(db, acct, key=key, kind="burn", pts=-pts, at=at, reason=reason,
                  detail={**(detail or {}), "lots": {str(k): v for k, v in taken.items()}})
    if notify:
        record_follow_up(db, source=SOURCE, external_id=redeemed_id(key), type="loyalty.points_redeemed",
                         customer_id=acct.customer_id, occurred_at=at,
                         payload={"points": pts, "balance": entry.balance_after, "reason": reason,
                                  "request_id": str((detail or {}).get("request_id", "")), "source": key})
    return Booked(entry, False)


def _short(prefix: str, key: str, limit: int) -> str:
    ident = f"{prefix}:{key}"
    return ident if len(ident) <= limit else f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def redeemed_id(key: str) -> str:
    """The ``loyalty.points_redeemed`` event's external id for the redemption booked under ledger ``key``
    (``redeemed:<key>``; a key too long for the events table's 120 characters by its SHA-256 instead)."""
    return _short("redeemed", key, 120)


def cancelled_id(key: str) -> str:
    """The ``loyalty.redemption_cancelled`` event's external id for the redemption booked under ``key``
    (``cancelled:<key>``, or by its SHA-256 when too long)."""
    return _short("cancelled", key, 120)


def cancel_key(key: str) -> str:
    """The ledger key of the one cancellation the redemption booked under ``key`` may have."""
    return _short("cancel", key, 300)


def redemption_key(db: Session, customer_id: str, entry_id: int) -> str | None:
    """The ledger key of the member's redemption entry ``entry_id`` (None when it is no redemption of theirs)."""
    entry = db.get(LoyaltyEntry, entry_id)
    if entry is None or entry.kind != "burn" or entry.customer_id not in aliases(db, customer_id):
        return None
    return entry.key


def cancel_redemption(db: Session, customer_id: str, key: str, at: datetime, *, reason: str = "cancelled",
                      by: str = "", notify: bool = True) -> Booked:
    """Cancel the member's redemption booked under ledger ``key``: give its points back, whole.

    The points go back to the lots the burn took them from (its ``lots``), each keeping its expiry; the
    points of a lot that has expired by ``at`` (or whose expiry is booked) are not revived — they lapse
    as they would have unspent, and the entry's detail names them (``lapsed``). Points that come back
    repay a debt first, as an earn does (``debt_repaid``). Once per redemption, under the member's lock:
    a retried or concurrent cancellation books nothing and gets the first one's entry (``repeated``).
    A fresh one records ``loyalty.redemption_cancelled`` in the same transaction. Raises
    :class:`RedemptionNotFound` when ``key`` is not a redemption of this member."""
    acct = account(db, customer_id)
    redemption = _existing(db, key)
    if redemption is None or redemption.kind != "burn" or redemption.customer_id != acct.customer_id:
        raise RedemptionNotFound(key)
    found = _existing(db, cancel_key(key))
    if found is not None:
        return Booked(found, True)
    taken = {int(k): int(v) for k, v in dict((redemption.detail or {}).get("lots") or {}).items()}
    rows = {lot.id: lot for lot in db.scalars(select(LoyaltyLot).where(LoyaltyLot.id.in_(list(taken)))
                                              .execution_options(populate_existing=True))}
    closed = {int(k.split(":", 1)[1]) for k in db.scalars(select(LoyaltyEntry.key).where(
        LoyaltyEntry.key.in_([f"expire:{lot_id}" for lot_id in taken])))}
    back = points.give_back(taken, [points.Lot(lot.id, lot.remaining, lot.earned_at, lot.expires_at)
                                    for lot in rows.values()], at, acct.debt, closed=closed)
    for lot_id, n in back.restored.items():
        rows[lot_id].remaining += n
    acct.debt -= back.repaid
    acct.balance += back.returned - back.repaid
    request_id = str((redemption.detail or {}).get("request_id", ""))
    entry = _book(db, acct, key=cancel_key(key), kind="cancel", pts=back.returned, at=at,
                  source_ref=key if len(key) <= 200 else "", reason=reason,
                  detail={"redemption": redemption.id, "redemption_key": key, "redeemed": -redemption.points,
                          "lots": {str(k): v for k, v in back.restored.items()},
                          "lapsed": {str(k): v for k, v in back.lapsed.items()}, "debt_repaid": back.repaid,
                          "by": by, "request_id": request_id})
    if notify:
        record_follow_up(db, source=SOURCE, external_id=cancelled_id(key), type="loyalty.redemption_cancelled",
                         customer_id=acct.customer_id, occurred_at=at,
                         payload={"points": back.returned, "lapsed": sum(back.lapsed.values()),
                                  "redeemed": -redemption.points, "balance": entry.balance_after,
                                  "reason": reason, "request_id": request_id, "source": key})
    return Booked(entry, False)


def order_ref(channel: str, shop: str, order_id: str) -> str:
    return f"order:{channel}:{shop}:{order_id}"


def earn_for_order(db: Session, customer_id: str, order: models.Order, at: datetime) -> Booked | None:
    """Points for a paid order by the program's rule: per yuan × tier multiplier × campaign boosts + bonus."""
    program = load(db)
    ref = order_ref(order.channel, order.shop, order.order_id)
    acct = account(db, customer_id)
    found = _existing(db, ref)
    if found is not None:
        return Booked(found, True)
    tier_list = program.tier_list()
    current = next((t for t in tier_list if t.key == acct.tier), tier_list[0])
    boost, bonus = program.boost(at)
    pts = points.earned_points(int(order.amount_fen), program.points_per_yuan, tier_multiplier=current.multiplier,
                               campaign_multiplier=boost, bonus=bonus)
    return earn(db, customer_id, pts, ref, at, reason="order", source_ref=ref, program=program,
                detail={"amount_fen": int(order.amount_fen), "tier": current.key, "multiplier": str(current.multiplier),
                        "boost": str(boost), "bonus": bonus})


def reverse_for_refund(db: Session, customer_id: str, order: models.Order, refund_key: str,
                       at: datetime) -> Booked | None:
    """Take back the order's points in proportion to what is refunded so far (partial refunds add up)."""
    ref = order_ref(order.channel, order.shop, order.order_id)
    acct = account(db, customer_id)
    found = _existing(db, refund_key)
    if found is not None:
        return Booked(found, True)
    earned_entry = _existing(db, ref)
    if earned_entry is None or earned_entry.points <= 0:
        return None
    already = -int(db.scalar(select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
        LoyaltyEntry.source_ref == ref, LoyaltyEntry.kind == "reverse")) or 0)
    due = points.reversal(earned_entry.points, int(order.amount_fen), int(order.refunded_fen or 0), already)
    if due == 0:
        return None
    lots = _lots(db, acct.customer_id)
    by_id = {lot.id: lot for lot in lots}
    own = next((lot.id for lot in lots if lot.entry_id == earned_entry.id), None)
    taken, short = points.allocate([points.Lot(lot.id, lot.remaining, lot.earned_at, lot.expires_at) for lot in lots],
                                   due, at, prefer=own)
    for lot_id, n in taken.items():
        by_id[lot_id].remaining -= n
    acct.balance -= due - short
    acct.debt += short
    return Booked(_book(db, acct, key=refund_key, kind="reverse", pts=-due, at=at, source_ref=ref, reason="refund",
                        detail={"refunded_fen": int(order.refunded_fen or 0), "debt_added": short,
                                "lots": {str(k): v for k, v in taken.items()}}), False)


def expire_due(db: Session, now: datetime, limit: int = 5000) -> int:
    """Book the expiry of every lot that expired by ``now`` with points left (once per lot)."""
    ids = list(db.scalars(select(LoyaltyLot.id).where(LoyaltyLot.remaining > 0, LoyaltyLot.expires_at <= now)
                          .order_by(LoyaltyLot.expires_at).limit(limit)))
    done = 0
    for lot_id in ids:
        lot = db.get(LoyaltyLot, lot_id)
        if lot is None:
            continue
        acct = account(db, lot.customer_id)
        lot = db.scalar(select(LoyaltyLot).where(LoyaltyLot.id == lot_id).with_for_update()
                        .execution_options(populate_existing=True))
        if lot is None or lot.remaining <= 0 or _existing(db, f"expire:{lot.id}") is not None:
            continue
        lapsed, lot.remaining = lot.remaining, 0
        acct.balance -= lapsed
        _book(db, acct, key=f"expire:{lot.id}", kind="expire", pts=-lapsed, at=lot.expires_at or now,
              source_ref=lot.source_ref, reason="expired", detail={"lot": lot.id})
        done += 1
    return done


def notify_expiring(db: Session, now: datetime, days: int) -> int:
    """A ``loyalty.points_expiring`` event per member whose lots expire within ``days`` (once per lot)."""
    horizon = now + timedelta(days=days)
    lots = list(db.scalars(select(LoyaltyLot).where(LoyaltyLot.remaining > 0, LoyaltyLot.notified_at.is_(None),
                                                    LoyaltyLot.expires_at > now, LoyaltyLot.expires_at <= horizon)))
    by_customer: dict[str, list[LoyaltyLot]] = {}
    for lot in lots:
        by_customer.setdefault(lot.customer_id, []).append(lot)
    for cid, mine in by_customer.items():
        first = min(lot.expires_at for lot in mine if lot.expires_at is not None)
        total = sum(lot.remaining for lot in mine)
        record_follow_up(db, source=SOURCE, external_id=f"expiring:{cid}:{min(lot.id for lot in mine)}",
                         type="loyalty.points_expiring", customer_id=cid, occurred_at=now,
                         payload={"points": total, "expires_at": first.isoformat(), "lots": len(mine)})
        for lot in mine:
            lot.notified_at = now
    return len(by_customer)


def tier_value(db: Session, customer_id: str, now: datetime, basis: str) -> int:
    ids = aliases(db, customer_id)
    since = now - timedelta(days=365)
    if basis == "points_12m":
        return int(db.scalar(select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
            LoyaltyEntry.customer_id.in_(ids), LoyaltyEntry.kind.in_(("earn", "reverse")),
            LoyaltyEntry.at >= since)) or 0)
    return int(db.scalar(select(func.coalesce(func.sum(models.Order.amount_fen - models.Order.refunded_fen), 0)).where(
        models.Order.customer_id.in_(ids), models.Order.paid_at >= since, models.Order.paid_at <= now,
        models.Order.status != "cancelled")) or 0)


def check_tier(db: Session, acct: LoyaltyAccount, now: datetime, program: ProgramConfig, *,
               allow_downgrade: bool) -> tiers.Change:
    """Move the member to the tier their spend / points earn; upgrades issue the tier's coupon once."""
    tier_list = program.tier_list()
    change = tiers.evaluate(acct.tier, tier_value(db, acct.customer_id, now, program.tier_basis), tier_list,
                            allow_downgrade=allow_downgrade, changed_at=acct.tier_changed_at, now=now,
                            keep_for=timedelta(days=program.keep_tier_days))
    if change.after == acct.tier:
        return change
    acct.tier, acct.tier_changed_at = change.after, now
    if change.direction == "none":
        return change
    new = next(t for t in tier_list if t.key == change.after)
    payload: dict[str, Any] = {"before": change.before, "after": change.after, "direction": change.direction,
                               "tier_name": new.name}
    if change.direction == "up" and new.upgrade_coupon:
        from activities.coupons.issuance import CampaignNotFound, issue_coupon

        try:
            outcome = issue_coupon(db, new.upgrade_coupon, acct.customer_id,
                                   f"tier-upgrade/{acct.customer_id}/{new.key}", now)
            payload["coupon"] = outcome.as_detail()
        except CampaignNotFound:
            payload["coupon"] = {"status": "campaign_missing", "campaign": new.upgrade_coupon}
    record_follow_up(db, source=SOURCE, external_id=f"tier:{acct.customer_id}:{change.after}:{now.isoformat()}",
                     type="loyalty.tier_changed", customer_id=acct.customer_id, occurred_at=now, payload=payload)
    return change


def review_tiers(db: Session, now: datetime, program: ProgramConfig | None = None) -> dict[str, int]:
    """The scheduled tier review: downgrades (and any upgrade missed) for every member."""
    program = program or load(db)
    counts = {"up": 0, "down": 0}
    for cid in list(db.scalars(select(LoyaltyAccount.customer_id))):
        change = check_tier(db, account(db, cid), now, program, allow_downgrade=True)
        if change.direction in counts:
            counts[change.direction] += 1
    return counts


def birthday_gifts(db: Session, now: datetime, program: ProgramConfig | None = None) -> int:
    """Issue the tier's birthday coupon to members whose birthday (``birthday`` attribute, YYYY-MM-DD or
    MM-DD) is today in the program's timezone — once a year."""
    from activities.coupons.issuance import CampaignNotFound, issue_coupon

    program = program or load(db)
    gifts = {t.key: t.birthday_coupon for t in program.tier_list() if t.birthday_coupon}
    if not gifts:
        return 0
    today = now.astimezone(ZoneInfo(program.timezone))
    given = 0
    for acct in list(db.scalars(select(LoyaltyAccount).where(LoyaltyAccount.tier.in_(list(gifts))))):
        customer = db.get(models.Customer, acct.customer_id)
        birthday = str((customer.attributes or {}).get("birthday") or "") if customer else ""
        if birthday[-5:] != today.strftime("%m-%d"):
            continue
        try:
            outcome = issue_coupon(db, str(gifts[str(acct.tier)]), acct.customer_id,
                                   f"birthday/{acct.customer_id}/{today.year}", now)
        except CampaignNotFound:
            continue
        given += int(outcome.issued and not outcome.repeated)
    return given


def find_member(db: Session, identities: dict[str, str]) -> str | None:
    """The customer one of these identities belongs to (a shop's buyer id, a mini-program's openid, a
    phone …), following merges; None when none is known. Never creates a customer."""
    from engine.customers import check_kind, normalise

    for kind, value in identities.items():
        check_kind(kind)
        if kind == "customer_id":
            found = db.get(models.Customer, value)
            return canonical(db, found.id) if found else None
        row = db.get(models.Identity, (kind, normalise(kind, value)))
        if row is not None:
            return canonical(db, row.customer_id)
    return None


def summary(db: Session, customer_id: str, now: datetime, entries: int = 50) -> dict[str, Any]:
    """Balance, tier, lots and the latest ledger lines (the customer page and the shop API). ``balance`` is
    what the member may spend at ``now``: the points in lots not expired by then (also before
    :func:`expire_due` books the lapse) minus the debt."""
    ids = aliases(db, customer_id)
    acct = db.get(LoyaltyAccount, ids[0])
    lots = list(db.scalars(select(LoyaltyLot).where(LoyaltyLot.customer_id.in_(ids), LoyaltyLot.remaining > 0)
                           .order_by(LoyaltyLot.expires_at.asc().nulls_last(), LoyaltyLot.id)))
    lines = list(db.scalars(select(LoyaltyEntry).where(LoyaltyEntry.customer_id.in_(ids))
                            .order_by(LoyaltyEntry.id.desc()).limit(entries)))
    cancelled = set(db.scalars(select(LoyaltyEntry.key).where(
        LoyaltyEntry.key.in_([cancel_key(e.key) for e in lines if e.kind == "burn"])))) if lines else set()
    balance, debt = (acct.balance, acct.debt) if acct else (0, 0)
    # lots past their expiry whose lapse the upkeep has not booked yet hold no spendable points
    balance -= sum(lot.remaining for lot in lots if lot.expires_at is not None and lot.expires_at <= now)
    names = {t.key: t.name for t in load(db).tier_list()}
    tier = acct.tier if acct else None
    return {"customer_id": ids[0], "balance": balance - debt, "points_in_lots": balance, "debt": debt,
            "tier": tier, "tier_name": names.get(tier or "", ""),
            "lifetime_earned": acct.lifetime_earned if acct else 0,
            "lots": [{"id": lot.id, "points": lot.points, "remaining": lot.remaining,
                      "earned_at": lot.earned_at.isoformat(),
                      "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
                      "expired": lot.expires_at is not None and lot.expires_at <= now} for lot in lots],
            "ledger": [{"id": e.id, "kind": e.kind, "points": e.points, "balance_after": e.balance_after,
                        "reason": e.reason, "source": e.source_ref, "at": e.at.isoformat(),
                        **({"request_id": str((e.detail or {}).get("request_id", "")),
                            "cancelled": cancel_key(e.key) in cancelled} if e.kind == "burn" else {})}
                       for e in lines]}
