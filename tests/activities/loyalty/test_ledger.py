"""The points ledger through real events (order book → loyalty hook), on SQLite and PostgreSQL:
earning by rule, partial refunds, FIFO redemption, expiry, tiers, follow-up events, and concurrent
duplicates that never book twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.loyalty import ledger
from activities.loyalty.program import PointsCampaign, ProgramConfig, TierSpec, save
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.loyalty_models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from engine.db.session import session_factory, transaction
from tests.racing import race

NOW = datetime.now(UTC)


def program(db_url: str, **over: Any) -> None:
    config = ProgramConfig(**{"enabled": True, "tiers": [TierSpec(key="member", name="会员", threshold=0),
                                        TierSpec(key="gold", name="金卡", threshold=100_000, multiplier=Decimal(2),
                                                 upgrade_coupon="gold-gift")], **over})
    with transaction(db_url) as db:
        save(db, config, "admin")
        db.add(models.CouponCampaign(id="gold-gift", name="金卡礼", value_fen=5000, status="active"))


def send(db_url: str, event_id: str, type_: str, cid: str, payload: dict[str, Any],
         at: datetime | None = None) -> tuple[str, dict[str, Any], bool]:
    return ingest.store(ingest.EventIn.model_validate({
        "id": event_id, "type": type_, "customer": {"customer_id": cid}, "payload": payload,
        "occurred_at": (at or NOW).isoformat()}), db_url)


def customer(db_url: str, name: str = "会员") -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": name}, name)


def state(db_url: str, cid: str) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        return ledger.summary(db, cid, datetime.now(UTC))


def redeemed_events(db_url: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(
            models.EventRecord.type == "loyalty.points_redeemed").order_by(models.EventRecord.id)))


def test_a_long_redemption_key_gets_a_short_stable_event_id() -> None:
    key = "redeem:" + "u" * 50 + ":" + "r" * 100
    assert ledger.redeemed_id(key) == ledger.redeemed_id(key) != ledger.redeemed_id(key + "x")
    assert len(ledger.redeemed_id(key)) <= 120 and ledger.redeemed_id("redeem:a:1") == "redeemed:redeem:a:1"


def test_earn_refund_redeem_and_tier(any_db_url: str) -> None:
    program(any_db_url)
    cid = customer(any_db_url)
    send(any_db_url, "p1", "order.paid", cid, {"order_id": "A1", "amount_fen": 19_900})  # ¥199 → 199 points
    assert state(any_db_url, cid)["balance"] == 199
    send(any_db_url, "r1", "refund.completed", cid, {"order_id": "A1", "refund_id": "R1", "amount_fen": 5_000})
    assert state(any_db_url, cid)["balance"] == 149  # floor(199 × 50/199) = 50 taken back
    send(any_db_url, "r1", "refund.completed", cid, {"order_id": "A1", "refund_id": "R1", "amount_fen": 5_000})
    assert state(any_db_url, cid)["balance"] == 149  # the same refund redelivered: nothing more
    # ¥1,000 paid: the member crosses ¥1,000 of 12-month spend → gold at once, with its coupon
    send(any_db_url, "p2", "order.paid", cid, {"order_id": "A2", "amount_fen": 100_000})
    after = state(any_db_url, cid)
    assert after["tier"] == "gold" and after["balance"] == 149 + 1000  # earned at the tier held when paid
    send(any_db_url, "p3", "order.paid", cid, {"order_id": "A3", "amount_fen": 1_000})
    assert state(any_db_url, cid)["balance"] == 1149 + 20  # ¥10 × 2 (gold)
    with transaction(any_db_url) as db:
        booked = ledger.burn(db, cid, 300, "redeem:shop-1:42", datetime.now(UTC), reason="兑换")
        assert not booked.repeated and booked.entry.balance_after == 869
    with transaction(any_db_url) as db:
        assert ledger.burn(db, cid, 300, "redeem:shop-1:42", datetime.now(UTC), reason="兑换").repeated
        with pytest.raises(ledger.InsufficientPoints):
            ledger.burn(db, cid, 10_000, "redeem:shop-1:43", datetime.now(UTC), reason="兑换")
    summary = state(any_db_url, cid)
    assert summary["balance"] == 869 and [e["kind"] for e in summary["ledger"]][:1] == ["burn"]
    with session_factory(any_db_url)() as db:
        events = {e.type: e.payload for e in db.scalars(select(models.EventRecord).where(
            models.EventRecord.type.like("loyalty.%")))}
        coupon = db.scalar(select(models.Coupon).where(models.Coupon.customer_id == cid))
    assert events["loyalty.tier_changed"]["after"] == "gold" and events["loyalty.tier_changed"]["direction"] == "up"
    # the redemption told journeys once (the repeat and the refused one did not)
    assert events["loyalty.points_redeemed"] == {"points": 300, "balance": 869, "reason": "兑换", "request_id": "",
                                                 "source": "redeem:shop-1:42"}
    assert [e.external_id for e in redeemed_events(any_db_url)] == ["redeemed:redeem:shop-1:42"]
    assert coupon is not None and coupon.campaign_id == "gold-gift"


def test_a_refund_after_spending_leaves_a_debt_the_next_earn_repays(db_url: str) -> None:
    program(db_url)
    cid = customer(db_url)
    send(db_url, "p1", "order.paid", cid, {"order_id": "B1", "amount_fen": 10_000})  # 100 points
    with transaction(db_url) as db:
        ledger.burn(db, cid, 80, "redeem:1", datetime.now(UTC), reason="兑换")
    send(db_url, "r1", "refund.completed", cid, {"order_id": "B1", "refund_id": "R1", "amount_fen": 10_000})
    after = state(db_url, cid)
    assert (after["balance"], after["debt"]) == (-80, 80)  # 20 left taken, 80 owed
    send(db_url, "p2", "order.paid", cid, {"order_id": "B2", "amount_fen": 9_000})  # 90 points: 80 repay the debt
    after = state(db_url, cid)
    assert (after["balance"], after["debt"], after["points_in_lots"]) == (10, 0, 10)


def test_lots_expire_first_in_first_out_and_members_are_told_before(db_url: str) -> None:
    program(db_url, expiry_rule="days:30", expiring_notice_days=7)
    cid = customer(db_url)
    send(db_url, "p1", "order.paid", cid, {"order_id": "C1", "amount_fen": 5_000}, at=NOW - timedelta(days=27))
    send(db_url, "p2", "order.paid", cid, {"order_id": "C2", "amount_fen": 7_000}, at=NOW - timedelta(days=1))
    with transaction(db_url) as db:
        ledger.burn(db, cid, 20, "redeem:c", NOW, reason="兑换")  # from the older lot, which expires first
    with transaction(db_url) as db:
        assert ledger.notify_expiring(db, NOW, 7) == 1
        assert ledger.notify_expiring(db, NOW, 7) == 0  # once per lot
    with transaction(db_url) as db:
        assert ledger.expire_due(db, NOW + timedelta(days=4)) == 1
        assert ledger.expire_due(db, NOW + timedelta(days=4)) == 0
    after = state(db_url, cid)
    assert after["balance"] == 70 and [lot["remaining"] for lot in after["lots"]] == [70]
    with session_factory(db_url)() as db:
        notice = db.scalar(select(models.EventRecord).where(models.EventRecord.type == "loyalty.points_expiring"))
        expired = db.scalar(select(LoyaltyEntry).where(LoyaltyEntry.kind == "expire"))
    assert notice is not None and notice.payload["points"] == 30
    assert expired is not None and expired.points == -30


def test_downgrades_wait_for_the_scheduled_review(db_url: str) -> None:
    program(db_url, keep_tier_days=0)
    cid = customer(db_url)
    send(db_url, "p1", "order.paid", cid, {"order_id": "D1", "amount_fen": 120_000})
    assert state(db_url, cid)["tier"] == "gold"
    send(db_url, "r1", "refund.completed", cid, {"order_id": "D1", "refund_id": "R1", "amount_fen": 120_000})
    assert state(db_url, cid)["tier"] == "gold"  # no downgrade in the middle of things
    with transaction(db_url) as db:
        assert ledger.review_tiers(db, datetime.now(UTC)) == {"up": 0, "down": 1}
    assert state(db_url, cid)["tier"] == "member"


def test_campaign_boosts_and_bonus(db_url: str) -> None:
    program(db_url, campaigns=[PointsCampaign(name="双11", starts_at=NOW - timedelta(days=1),
                                              ends_at=NOW + timedelta(days=1), multiplier=Decimal(2), bonus=10)])
    cid = customer(db_url)
    send(db_url, "p1", "order.paid", cid, {"order_id": "E1", "amount_fen": 3_333})
    assert state(db_url, cid)["balance"] == 66 + 10  # floor(33.33 × 2) + 10


def test_concurrent_duplicates_never_earn_twice(any_db_url: str) -> None:
    program(any_db_url)
    cid = customer(any_db_url)
    # the same order.paid from two shop pushes under different event ids, and the same event redelivered
    results = race(10, lambda i: send(any_db_url, f"push-{i % 3}", "order.paid", cid,
                                      {"order_id": "F1", "amount_fen": 50_000}))
    assert not [r for r in results if isinstance(r, Exception)], results
    with session_factory(any_db_url)() as db:
        earns = db.scalar(select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.kind == "earn"))
        acct = db.get(LoyaltyAccount, cid)
        lots = db.scalar(select(func.count()).select_from(LoyaltyLot))
    assert earns == 1 and lots == 1 and acct is not None and acct.balance == 500


def test_concurrent_redemptions_never_overdraw(any_db_url: str) -> None:
    program(any_db_url)
    cid = customer(any_db_url)
    send(any_db_url, "p1", "order.paid", cid, {"order_id": "G1", "amount_fen": 10_000})  # 100 points

    def redeem(i: int) -> Any:
        with transaction(any_db_url) as db:
            return ledger.burn(db, cid, 30, f"redeem:req-{i % 4}", datetime.now(UTC), reason="兑换")

    results = race(8, redeem)
    fresh = [r for r in results if isinstance(r, ledger.Booked) and not r.repeated]
    refused = [r for r in results if isinstance(r, ledger.InsufficientPoints)]
    assert len(fresh) == 3 and all(isinstance(r, ledger.Booked | ledger.InsufficientPoints) for r in results)
    assert refused  # the fourth distinct request found 10 points left
    assert state(any_db_url, cid)["balance"] == 10
    # one loyalty.points_redeemed per redemption booked: none for the repeats, none for the refused one
    told = redeemed_events(any_db_url)
    assert sorted(e.external_id for e in told) == sorted(f"redeemed:{r.entry.key}" for r in fresh)
    assert sorted(e.payload["balance"] for e in told) == [10, 40, 70]


def test_birthday_gifts_once_a_year_for_tiers_that_have_one(db_url: str) -> None:
    from zoneinfo import ZoneInfo

    config = ProgramConfig(enabled=True, tiers=[TierSpec(key="member", name="会员", threshold=0,
                                                         birthday_coupon="bday")])
    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d")
    with transaction(db_url) as db:
        save(db, config, "admin")
        db.add(models.CouponCampaign(id="bday", name="生日礼", value_fen=2000, status="active", per_customer_limit=10))
        born = resolve(db, {"external_id": "b"}, "寿星", {"birthday": f"1990-{today}"})
        other = resolve(db, {"external_id": "o"}, "路人", {"birthday": "1990-01-01"})
        for cid in (born, other):
            ledger.earn(db, cid, 1, f"seed:{cid}", now, reason="seed")
    with transaction(db_url) as db:
        assert ledger.birthday_gifts(db, now) == 1
        assert ledger.birthday_gifts(db, now) == 0  # once a year
    with session_factory(db_url)() as db:
        gifts = list(db.scalars(select(models.Coupon).where(models.Coupon.campaign_id == "bday")))
    assert [g.customer_id for g in gifts] == [born]


def test_orders_earn_nothing_until_the_program_is_enabled(db_url: str) -> None:
    cid = customer(db_url)
    send(db_url, "p1", "order.paid", cid, {"order_id": "Z1", "amount_fen": 10_000})
    assert state(db_url, cid)["balance"] == 0
    program(db_url)
    send(db_url, "p2", "order.paid", cid, {"order_id": "Z2", "amount_fen": 10_000})
    assert state(db_url, cid)["balance"] == 100


def test_the_sidebar_shows_tier_points_and_what_lapses_soon(db_url: str) -> None:
    from activities.sidebar.picture import panel_providers

    program(db_url, expiry_rule="days:20")
    cid = customer(db_url)
    with session_factory(db_url)() as db:
        assert panel_providers()["loyalty"](db, cid, NOW) is None  # no account yet: no section
    send(db_url, "p1", "order.paid", cid, {"order_id": "S1", "amount_fen": 120_000})
    with session_factory(db_url)() as db:
        panel = panel_providers()["loyalty"](db, cid, datetime.now(UTC))
    assert panel is not None and panel.facts == {"tier": "金卡", "points": 1200}
    values = {item["label"]["en"]: item["value"] for item in panel.items}
    assert values["Tier"] == "金卡" and values["Points"] == "1200" and values["Expiring soon"].startswith("1200 (")
