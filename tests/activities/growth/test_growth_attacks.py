"""Attacks on the growth and loyalty entrances: forged and oversized states, bad specs, bad programs,
decisions on what does not exist, redemptions that are not whole positive numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from activities.growth import campaigns
from activities.growth.channels import ChannelSpec
from activities.loyalty import ledger
from activities.loyalty.program import ProgramConfig, TierSpec
from engine.customers import resolve
from engine.db.growth_models import ChannelAdd, GrowthChannel, ReferralInvite
from engine.db.session import session_factory, transaction
from tests.activities.growth.growth_kit import make_campaign, store_one
from tests.connectors.fake_wecom import contact_event_xml


def test_forged_oversized_and_foreign_states_attribute_nothing(db_url: str) -> None:
    make_campaign(db_url, no=1)
    make_campaign(db_url, "other", no=2)
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "p"}, "p")
        participant, _ = campaigns.join(db, campaigns.get_campaign(db, "other"), cid, datetime.now(UTC))
        db.add(GrowthChannel(key="real", name="real", state="tfc1", config_id="cfg"))
    now = int(datetime.now(UTC).timestamp())
    # participant 1 belongs to campaign 2: a state naming campaign 1 with that participant is not theirs
    for i, state in enumerate([f"tfr1.{participant.id}", "tfc" + "z" * 5000, "x" * 20_000, "tfc1'; DROP TABLE x;--",
                               "tfr1.999999", "tfc999"]):
        status, _, _ = store_one(db_url, contact_event_xml("add_external_contact", f"wmATK{i}", "zhangsan",
                                                        create_time=now + i, state=state))
        assert status == "accepted"
    with session_factory(db_url)() as db:
        assert db.scalar(select(ReferralInvite.id)) is None and db.scalar(select(ChannelAdd.id)) is None


@pytest.mark.parametrize("bad", [
    {"key": "../etc"}, {"key": "A" * 61}, {"remark": "x" * 31}, {"staff": []},
    {"schedule": [{"days": [8], "start": "09:00", "end": "18:00", "users": ["a"]}]},
    {"schedule": [{"start": "25:99", "end": "18:00", "users": ["a"]}]},
    {"daily_cap": 0}, {"timezone": "Mars/Olympus"}, {"welcome": {"attachments": ["u"] * 10}},
    {"unknown_field": 1},
])
def test_bad_channel_specs_are_refused_naming_the_field(bad: dict[str, object]) -> None:
    base = {"key": "ok", "name": "ok", "staff": ["a"], **bad}
    with pytest.raises(ValidationError):
        ChannelSpec.model_validate(base)


@pytest.mark.parametrize("bad", [
    {"expiry_rule": "forever"}, {"points_per_yuan": "-1"}, {"timezone": "Nowhere/Else"},
    {"tiers": [TierSpec(key="a", name="a", threshold=5)]},
    {"tiers": [TierSpec(key="a", name="a", threshold=0), TierSpec(key="b", name="b", threshold=0)]},
])
def test_bad_programs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProgramConfig(**bad)  # type: ignore[arg-type]
    assert ProgramConfig(points_per_yuan=Decimal("0.5")).points_per_yuan == Decimal("0.5")


def test_decisions_and_redemptions_that_make_no_sense(db_url: str) -> None:
    now = datetime.now(UTC)
    with transaction(db_url) as db:
        with pytest.raises(campaigns.CampaignError, match="does not exist"):
            campaigns.decide(db, 424242, True, "reviewer", "why not", now)
        with pytest.raises(campaigns.CampaignError, match="does not exist"):
            campaigns.get_campaign(db, "nope")
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "m"}, "m")
        for points in (0, -5):
            with pytest.raises(ledger.LoyaltyError):
                ledger.burn(db, cid, points, f"redeem:{points}", now, reason="x")
        with pytest.raises(ledger.InsufficientPoints):
            ledger.burn(db, cid, 10**15, "redeem:huge", now, reason="x")
        with pytest.raises(ledger.LoyaltyError):
            ledger.earn(db, cid, -1, "earn:neg", now, reason="x")
        assert ledger.find_member(db, {"phone": "13800138000"}) is None
        assert ledger.find_member(db, {"external_id": "m"}) == cid


@pytest.mark.parametrize(("registered", "new_account"), [
    ("yesterday", False),  # not a time: as if unknown (before: ValueError, the add was never recorded)
    ("2026-13-45T99:00", False),
    (12345, False),
    ("RECENT", False),  # replaced below by a naive time an hour ago: read as UTC (before: TypeError)
])
def test_an_invitees_registered_at_that_is_no_time_does_not_stop_the_invite(
        db_url: str, registered: object, new_account: bool) -> None:
    """``registered_at`` is the invitee's own profile attribute, which any event may set: what is not an ISO
    time counts as unknown, a naive one as UTC (engine.customers.parse_time), like every other time attribute."""
    now = datetime.now(UTC)
    if registered == "RECENT":
        registered, new_account = (now - timedelta(hours=1)).replace(tzinfo=None).isoformat(), True
    make_campaign(db_url, risk={"points": {"new_account": 100}, "review_at": 50})
    with transaction(db_url) as db:
        inviter = resolve(db, {"external_id": "inviter"}, "邀请人")
        invitee = resolve(db, {"external_id": "invitee"}, "好友", {"registered_at": registered})
        campaign = campaigns.get_campaign(db, "laodaixin")
        participant, _ = campaigns.join(db, campaign, inviter, now)
        invite = campaigns.register_invite(db, campaign, participant, invitee_id=invitee, user_id="zhangsan",
                                           event_key="t:1", event_id=None, added_at=now)
        assert invite is not None
        rules = [hit["rule"] for hit in invite.risk["hits"]]
    assert ("new_account" in rules) is new_account
