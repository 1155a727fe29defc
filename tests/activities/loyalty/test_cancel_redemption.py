"""Cancelling a redemption (积分兑换撤销): the points go back to the lots they came from, once — also when the
cancel is retried or raced — never to a lot that has expired since, repaying a debt first; only a redemption
of this member can be cancelled. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.loyalty import ledger
from activities.loyalty.program import ProgramConfig, TierSpec, save
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from engine.db.session import session_factory, transaction
from tests.racing import race

NOW = datetime.now(UTC)


def program(db_url: str, **over: Any) -> None:
    with transaction(db_url) as db:
        save(db, ProgramConfig(**{"enabled": True, "tiers": [TierSpec(key="member", name="会员", threshold=0)],
                                  **over}), "admin")


def customer(db_url: str, name: str) -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": name}, name)


def paid(db_url: str, cid: str, order: str, fen: int, at: datetime) -> None:
    ingest.store(ingest.EventIn.model_validate({
        "id": f"paid-{order}", "type": "order.paid", "customer": {"customer_id": cid},
        "payload": {"order_id": order, "amount_fen": fen}, "occurred_at": at.isoformat()}), db_url)


def refunded(db_url: str, cid: str, order: str, fen: int) -> None:
    ingest.store(ingest.EventIn.model_validate({
        "id": f"refund-{order}", "type": "refund.completed", "customer": {"customer_id": cid},
        "payload": {"order_id": order, "refund_id": f"R-{order}", "amount_fen": fen}}), db_url)


def redeem(db_url: str, cid: str, pts: int, key: str, at: datetime = NOW) -> ledger.Booked:
    with transaction(db_url) as db:
        return ledger.burn(db, cid, pts, key, at, reason="兑换", detail={"request_id": key.rsplit(":", 1)[-1]})


def cancel(db_url: str, cid: str, key: str, at: datetime = NOW) -> ledger.Booked:
    with transaction(db_url) as db:
        return ledger.cancel_redemption(db, cid, key, at, reason="缺货", by="mia")


def lots(db_url: str, cid: str) -> dict[int, int]:
    """Every lot of the member (spent ones too): id → points left."""
    with session_factory(db_url)() as db:
        return {lot.id: lot.remaining for lot in db.scalars(select(LoyaltyLot).where(LoyaltyLot.customer_id == cid)
                                                            .order_by(LoyaltyLot.id))}


def cancelled_events(db_url: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(
            models.EventRecord.type == "loyalty.redemption_cancelled").order_by(models.EventRecord.id)))


def books_balance(db_url: str, cid: str, now: datetime) -> dict[str, Any]:
    """The member's account agrees with their lots: ``balance`` is the points left in lots, and what the
    summary calls spendable is the points in unexpired lots minus the debt (expiries booked up to ``now``)."""
    with transaction(db_url) as db:
        ledger.expire_due(db, now)
    with session_factory(db_url)() as db:
        acct = db.get(LoyaltyAccount, cid)
        rows = list(db.scalars(select(LoyaltyLot).where(LoyaltyLot.customer_id == cid)))
        summary = ledger.summary(db, cid, now)
    assert acct is not None
    assert acct.balance == sum(lot.remaining for lot in rows)
    spendable = sum(lot.remaining for lot in rows if lot.expires_at is None or lot.expires_at > now)
    assert summary["balance"] == spendable - acct.debt
    assert all(0 <= lot.remaining <= lot.points for lot in rows)
    return summary


def test_cancelling_gives_the_points_back_to_their_lots_once(any_db_url: str) -> None:
    program(any_db_url, expiry_rule="days:30")
    cid = customer(any_db_url, "会员")
    paid(any_db_url, cid, "A1", 5_000, NOW - timedelta(days=20))  # 50 points, expire in 10 days
    paid(any_db_url, cid, "A2", 7_000, NOW - timedelta(days=1))  # 70 points, expire in 29 days
    first, second = lots(any_db_url, cid)
    redeem(any_db_url, cid, 80, "redeem:mia:r1")  # all 50 of the first lot, 30 of the second
    assert lots(any_db_url, cid) == {first: 0, second: 40}
    booked = cancel(any_db_url, cid, "redeem:mia:r1")
    assert not booked.repeated and booked.entry.kind == "cancel" and booked.entry.points == 80
    assert booked.entry.key == "cancel:redeem:mia:r1" and booked.entry.balance_after == 120
    assert booked.entry.detail["lots"] == {str(first): 50, str(second): 30} and booked.entry.detail["lapsed"] == {}
    assert lots(any_db_url, cid) == {first: 50, second: 70}
    with session_factory(any_db_url)() as db:  # each lot keeps its own expiry
        expiries = [lot.expires_at for lot in db.scalars(select(LoyaltyLot).order_by(LoyaltyLot.id))]
    assert expiries[0] is not None and abs(expiries[0] - (NOW + timedelta(days=10))) < timedelta(seconds=5)
    # a retry books nothing more and answers what was booked
    again = cancel(any_db_url, cid, "redeem:mia:r1", NOW + timedelta(hours=1))
    assert again.repeated and again.entry.id == booked.entry.id and again.entry.points == 80
    summary = books_balance(any_db_url, cid, NOW)
    assert summary["balance"] == 120
    assert [(e["kind"], e["points"]) for e in summary["ledger"][:2]] == [("cancel", 80), ("burn", -80)]
    assert summary["ledger"][1]["cancelled"] is True and summary["ledger"][1]["request_id"] == "r1"
    [told] = cancelled_events(any_db_url)
    assert told.customer_id == cid and told.external_id == "cancelled:redeem:mia:r1"
    assert told.payload == {"points": 80, "lapsed": 0, "redeemed": 80, "balance": 120, "reason": "缺货",
                            "request_id": "r1", "source": "redeem:mia:r1"}
    # the points are spendable again, from the lot that expires first
    redeem(any_db_url, cid, 60, "redeem:mia:r2")
    assert lots(any_db_url, cid) == {first: 0, second: 60}


def test_concurrent_cancels_give_back_once(any_db_url: str) -> None:
    program(any_db_url)
    cid = customer(any_db_url, "会员")
    paid(any_db_url, cid, "B1", 10_000, NOW)  # 100 points
    redeem(any_db_url, cid, 70, "redeem:shop:b")
    results = race(8, lambda i: cancel(any_db_url, cid, "redeem:shop:b"))
    assert all(isinstance(r, ledger.Booked) for r in results), results
    fresh = [r for r in results if isinstance(r, ledger.Booked) and not r.repeated]
    assert len(fresh) == 1 and {r.entry.id for r in results if isinstance(r, ledger.Booked)} == {fresh[0].entry.id}
    with session_factory(any_db_url)() as db:
        cancels = db.scalar(select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.kind == "cancel"))
    assert cancels == 1 and len(cancelled_events(any_db_url)) == 1
    assert books_balance(any_db_url, cid, NOW)["balance"] == 100


def test_cancels_racing_new_redemptions_never_overdraw_nor_give_back_twice(any_db_url: str) -> None:
    program(any_db_url)
    cid = customer(any_db_url, "会员")
    paid(any_db_url, cid, "M1", 10_000, NOW)  # 100 points
    redeem(any_db_url, cid, 100, "redeem:shop:all")

    def attempt(i: int) -> Any:  # half cancel the same redemption, half spend what it gives back
        if i % 2:
            return cancel(any_db_url, cid, "redeem:shop:all")
        return redeem(any_db_url, cid, 40, f"redeem:shop:n{i}")

    results = race(8, attempt)
    assert all(isinstance(r, ledger.Booked | ledger.InsufficientPoints) for r in results), results
    spent = [r for r in results if isinstance(r, ledger.Booked) and r.entry.kind == "burn"]
    assert len(spent) <= 2  # 100 points came back once: at most two redemptions of 40
    summary = books_balance(any_db_url, cid, NOW)
    assert summary["balance"] == 100 - 40 * len(spent) and len(cancelled_events(any_db_url)) == 1


def test_a_cancellation_rolled_back_leaves_no_trace(db_url: str) -> None:
    program(db_url)
    cid = customer(db_url, "会员")
    paid(db_url, cid, "N1", 10_000, NOW)
    redeem(db_url, cid, 50, "redeem:shop:n")
    with pytest.raises(RuntimeError), transaction(db_url) as db:
        ledger.cancel_redemption(db, cid, "redeem:shop:n", NOW)
        raise RuntimeError("the caller's transaction fails after the cancel")
    assert cancelled_events(db_url) == [] and books_balance(db_url, cid, NOW)["balance"] == 50
    assert not cancel(db_url, cid, "redeem:shop:n").repeated  # the event and the entry come together, later


def test_only_a_redemption_of_this_member_can_be_cancelled(db_url: str) -> None:
    program(db_url)
    cid, other = customer(db_url, "会员"), customer(db_url, "别人")
    paid(db_url, cid, "C1", 10_000, NOW)
    paid(db_url, other, "C2", 10_000, NOW)
    refunded(db_url, cid, "C1", 2_000)  # 20 points taken back
    redeem(db_url, other, 30, "redeem:mia:theirs")
    redeem(db_url, cid, 10, "redeem:mia:mine")
    cancel(db_url, cid, "redeem:mia:mine")
    with session_factory(db_url)() as db:
        keys = {e.kind: e.key for e in db.scalars(select(LoyaltyEntry).where(LoyaltyEntry.customer_id == cid))}
    assert set(keys) == {"earn", "reverse", "burn", "cancel"}
    for key in [keys["earn"], keys["reverse"], keys["cancel"], "redeem:mia:theirs", "redeem:mia:nope", "",
                "x" * 5000, "redeem:mia:mine' OR 1=1 --"]:
        with pytest.raises(ledger.RedemptionNotFound) as caught:
            cancel(db_url, cid, key)
        assert str(caught.value).startswith("the member has no redemption")
    with session_factory(db_url)() as db:
        assert db.scalar(select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.kind == "cancel")) == 1
    assert books_balance(db_url, cid, NOW)["balance"] == 80
    assert books_balance(db_url, other, NOW)["balance"] == 70  # their redemption still stands
    # the entry-id lookup the customer page uses is as strict
    with session_factory(db_url)() as db:
        theirs = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.key == "redeem:mia:theirs"))
        mine = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.key == "redeem:mia:mine"))
        earn = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.key == keys["earn"]))
        assert theirs is not None and mine is not None and earn is not None
        assert ledger.redemption_key(db, cid, mine) == "redeem:mia:mine"
        assert ledger.redemption_key(db, cid, theirs) is None and ledger.redemption_key(db, cid, earn) is None
        assert ledger.redemption_key(db, cid, 10**9) is None


def test_points_of_lots_that_expired_since_are_not_revived(db_url: str) -> None:
    program(db_url, expiry_rule="days:30")
    cid = customer(db_url, "会员")
    paid(db_url, cid, "D1", 5_000, NOW - timedelta(days=25))  # 50 points, expire in 5 days
    paid(db_url, cid, "D2", 3_000, NOW - timedelta(days=20))  # 30 points, expire in 10 days
    paid(db_url, cid, "D3", 4_000, NOW)  # 40 points, expire in 30 days
    first, second, third = lots(db_url, cid)
    redeem(db_url, cid, 60, "redeem:mia:early")  # 50 from the first lot, 10 from the second
    redeem(db_url, cid, 10, "redeem:mia:late")  # 10 more from the second
    # day 6: the first lot has expired, but the upkeep has not booked it yet — nothing goes back to it
    day6 = NOW + timedelta(days=6)
    booked = cancel(db_url, cid, "redeem:mia:early", day6)
    assert booked.entry.points == 10 and booked.entry.detail["lapsed"] == {str(first): 50}
    assert lots(db_url, cid) == {first: 0, second: 20, third: 40}
    # day 11, before the upkeep runs: the second lot's 20 are past their expiry and not spendable
    with session_factory(db_url)() as db:
        assert ledger.summary(db, cid, NOW + timedelta(days=11))["balance"] == 40
    assert books_balance(db_url, cid, day6)["balance"] == 60
    # day 11: the second lot expired and the upkeep booked it (20 points); the late redemption's 10 lapse too
    day11 = NOW + timedelta(days=11)
    with transaction(db_url) as db:
        assert ledger.expire_due(db, day11) == 1
    late = cancel(db_url, cid, "redeem:mia:late", day11)
    assert late.entry.points == 0 and late.entry.detail["lots"] == {}
    assert late.entry.detail["lapsed"] == {str(second): 10}
    summary = books_balance(db_url, cid, day11)
    assert summary["balance"] == 40 and lots(db_url, cid) == {first: 0, second: 0, third: 40}
    with transaction(db_url) as db:
        assert ledger.expire_due(db, day11) == 0  # nothing was revived for the upkeep to find
    # journeys hear of both cancellations, with what lapsed
    assert [(e.payload["points"], e.payload["lapsed"], e.payload["redeemed"]) for e in cancelled_events(db_url)] == [
        (10, 50, 60), (0, 10, 10)]


def test_points_given_back_repay_a_debt_first(db_url: str) -> None:
    program(db_url)
    cid = customer(db_url, "会员")
    paid(db_url, cid, "E1", 10_000, NOW)  # 100 points
    redeem(db_url, cid, 90, "redeem:mia:e")
    refunded(db_url, cid, "E1", 10_000)  # the order refunded whole: 10 taken from the lot, 90 owed
    summary = books_balance(db_url, cid, NOW)
    assert (summary["balance"], summary["debt"]) == (-90, 90)
    booked = cancel(db_url, cid, "redeem:mia:e")  # the gift is never sent: the 90 points pay the debt
    assert booked.entry.points == 90 and booked.entry.detail["debt_repaid"] == 90 and booked.entry.detail["lots"] == {}
    summary = books_balance(db_url, cid, NOW)
    assert (summary["balance"], summary["debt"], summary["points_in_lots"]) == (0, 0, 0)
    # a debt smaller than the redemption: the rest goes back to the lot
    paid(db_url, cid, "E2", 10_000, NOW)  # 100 points
    redeem(db_url, cid, 100, "redeem:mia:e2")
    refunded(db_url, cid, "E2", 3_000)  # 30 taken back with nothing left in lots: 30 owed
    assert books_balance(db_url, cid, NOW)["debt"] == 30
    booked = cancel(db_url, cid, "redeem:mia:e2")
    assert booked.entry.points == 100 and booked.entry.detail["debt_repaid"] == 30
    assert sum(booked.entry.detail["lots"].values()) == 70
    summary = books_balance(db_url, cid, NOW)
    assert (summary["debt"], summary["balance"], summary["points_in_lots"]) == (0, 70, 70)


def test_a_merged_members_redemption_is_cancelled_on_the_survivor(db_url: str) -> None:
    program(db_url)
    with transaction(db_url) as db:
        old = resolve(db, {"phone": "13800138000"}, "旧号")
        new = resolve(db, {"external_id": "m-1"}, "新号")
    paid(db_url, old, "F1", 10_000, NOW)
    redeem(db_url, old, 40, "redeem:mia:f")
    with transaction(db_url) as db:  # both identities turn out to be one person
        survivor = resolve(db, {"phone": "13800138000", "external_id": "m-1"})
    assert survivor in (old, new)
    booked = cancel(db_url, survivor, "redeem:mia:f")
    assert booked.entry.points == 40 and booked.entry.customer_id == survivor
    assert books_balance(db_url, survivor, NOW)["balance"] == 100
