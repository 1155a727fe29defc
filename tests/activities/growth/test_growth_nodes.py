"""The growth and loyalty nodes through engine.actions.perform (the activity path): joining a campaign
makes one personal code on WeCom even when journeys race; upkeep counts due invites and re-applies
staff caps; points for actions go through the ledger once per visit; loyalty upkeep expires and reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.growth import channels
from activities.growth.action_growth_upkeep import GrowthUpkeep
from activities.growth.action_referral_join import ReferralJoin
from activities.growth.channels import ChannelSpec
from activities.loyalty import ledger
from activities.loyalty.action_loyalty_points import LoyaltyPoints
from activities.loyalty.action_loyalty_upkeep import LoyaltyUpkeep
from engine.actions import ActionFailed, Services, perform
from engine.customers import resolve
from engine.db import models
from engine.db.growth_models import GrowthChannel, ReferralInvite, ReferralParticipant
from engine.db.session import session_factory, transaction
from engine.runtime import ActionRequest
from tests.activities.growth.growth_kit import connect_wecom, deliver, make_campaign, midday_zone
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.racing import race

__all__ = ["fake_wecom"]


def request(node_type: str, cid: str | None, config: dict[str, Any], visit: str = "1",
            now: datetime | None = None) -> ActionRequest:
    return ActionRequest(key=f"journey/t/{cid}/{visit}/n/1", workflow_id=f"journey/t/{cid}/{visit}", flow_id="t",
                         version=1, node_id="n", node_type=node_type, config=config, customer_id=cid,
                         now=(now or datetime.now(UTC)).isoformat())


def test_joining_makes_one_personal_code_even_when_journeys_race(any_db_url: str, fake_wecom: FakeWeCom,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(any_db_url, fake_wecom, monkeypatch)
    make_campaign(any_db_url, staff=("zhangsan", "lisi"))
    with transaction(any_db_url) as db:
        cid = resolve(db, {"external_id": "joiner"}, "参与者")
    services = Services(database_url=any_db_url)
    def join(i: int) -> dict[str, Any]:
        return perform(ReferralJoin, request(ReferralJoin.type, cid, {"campaign": "laodaixin"}, str(i)), services)

    raced = race(4, join)
    # a journey that lost the race while WeCom was answering the winner is retried (as Temporal does)
    assert all(isinstance(r, dict) or type(r).__name__ == "CodeNotReady" for r in raced), raced
    results = [r if isinstance(r, dict) else join(i) for i, r in enumerate(raced)]
    joined = {r["variables"]["referral_participant"] for r in results if isinstance(r, dict)}
    with session_factory(any_db_url)() as db:
        participant = db.scalar(select(ReferralParticipant))
        codes = list(db.scalars(select(GrowthChannel).where(GrowthChannel.purpose == "referral")))
    # one participant for every journey (its id need not be 1: on PostgreSQL a racer's rolled-back insert uses one)
    assert participant is not None and joined == {participant.id}
    assert len(codes) == 1 and participant.channel_id == codes[0].id
    ways = [w for w in fake_wecom.contact_ways.values() if w["state"] == f"tfr1.{participant.id}"]
    assert len(ways) == 1 and ways[0]["user"] == ["zhangsan", "lisi"]
    assert {r["variables"]["referral_qr_url"] for r in results} == {ways[0]["qr_code"]}


def test_joining_an_ended_campaign_says_so(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    make_campaign(db_url, starts=now - timedelta(days=9), ends=now - timedelta(days=1))
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "late"}, "迟到")
    result = perform(ReferralJoin, request(ReferralJoin.type, cid, {"campaign": "laodaixin"}),
                     Services(database_url=db_url))
    assert result["port"] == "not_joined" and "ended" in result["detail"]["message"]
    assert fake_wecom.contact_ways == {}


def test_upkeep_counts_due_invites_and_applies_caps(db_url: str, fake_wecom: FakeWeCom,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    make_campaign(db_url, rules={"min_friend_duration": "PT1H"})
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "inviter"}, "邀请人")
    services = Services(database_url=db_url)
    perform(ReferralJoin, request(ReferralJoin.type, cid, {"campaign": "laodaixin"}), services)
    code = next(w["config_id"] for w in fake_wecom.contact_ways.values() if w["state"].startswith("tfr"))
    deliver(db_url, fake_wecom.scan_and_add(code, "wmUP1")[0])
    now = datetime.now(UTC)
    capped = channels.create_channel(db_url, ChannelSpec(key="capped", name="限量", staff=["a", "b"], daily_cap=1,
                                                         timezone=midday_zone(now)), "t", now)
    deliver(db_url, fake_wecom.scan_and_add(str(capped.config_id), "wmUP2")[0])
    later = now + timedelta(hours=2)  # past the invite's hour, still the cap's day
    result = perform(GrowthUpkeep, request(GrowthUpkeep.type, None, {}, now=later), services)
    assert result["detail"]["invites_counted"] == 1 and result["detail"]["channels_updated"] == ["capped"]
    assert fake_wecom.contact_ways[str(capped.config_id)]["user"] == ["b"]
    with session_factory(db_url)() as db:
        assert db.scalar(select(ReferralInvite.status)) == "valid"


def test_points_for_actions_book_once_per_visit(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "m"}, "会员")
    services = Services(database_url=db_url)
    first = perform(LoyaltyPoints, request(LoyaltyPoints.type, cid, {"action": "signup"}), services)
    again = perform(LoyaltyPoints, request(LoyaltyPoints.type, cid, {"action": "signup"}), services)
    assert first == again and first["variables"]["points_given"] == 100
    perform(LoyaltyPoints, request(LoyaltyPoints.type, cid, {"points": 7, "reason": "晒单"}, visit="2"), services)
    with session_factory(db_url)() as db:
        assert ledger.summary(db, cid, datetime.now(UTC))["balance"] == 107
    with pytest.raises(ActionFailed, match="no action 'astrology'"):
        perform(LoyaltyPoints, request(LoyaltyPoints.type, cid, {"action": "astrology"}, visit="3"), services)
    with pytest.raises(ValueError):
        LoyaltyPoints.Config.model_validate({"action": "signup", "points": 5})


def test_loyalty_upkeep_expires_and_reviews(db_url: str) -> None:
    from activities.loyalty.program import ProgramConfig, save

    with transaction(db_url) as db:
        save(db, ProgramConfig(expiry_rule="days:10"), "admin")
        cid = resolve(db, {"external_id": "m"}, "会员")
        ledger.earn(db, cid, 50, "seed", datetime.now(UTC) - timedelta(days=11), reason="seed")
    result = perform(LoyaltyUpkeep, request(LoyaltyUpkeep.type, None, {}), Services(database_url=db_url))
    assert result["detail"]["lots_expired"] == 1
    with session_factory(db_url)() as db:
        assert ledger.summary(db, cid, datetime.now(UTC))["balance"] == 0
        assert db.scalar(select(func.count()).select_from(models.EventRecord).where(
            models.EventRecord.type == "loyalty.points_earned")) == 1
