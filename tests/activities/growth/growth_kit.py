"""Shared set-up for growth tests: a WeCom connector pointed at the loopback fake, and callbacks
delivered through the real parsing and ingest path (connectors.wecom.events → engine.events.store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.wecom.connector import WeComConnector
from connectors.wecom.events import events_from_callback
from engine import connectors as configured
from engine import events as ingest
from engine.db import models
from engine.db.growth_models import ReferralCampaign
from engine.db.session import session_factory, transaction
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    FakeWeCom,
)

SOURCE = "wecom-main"
FLOWS = Path(__file__).resolve().parents[3] / "flows"


def connect_wecom(db_url: str, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch,
                  image_hosts: list[str] | None = None) -> None:
    from connectors.wechat_oa.connector import WeChatOAConnector

    monkeypatch.setattr(configured, "connector_classes",
                        lambda: {"wecom": WeComConnector, "wechat_oa": WeChatOAConnector})
    with transaction(db_url) as db:
        configured.save(db, SOURCE, "wecom", "企业微信（测试）",
                        {"corp_id": WECOM_CORP_ID, "agent_id": 1000002, "api_base": fake.url,
                         "rate_limit_per_second": 200, "image_hosts": image_hosts or []},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})


def deliver(db_url: str, xml: str, *, profile: dict[str, Any] | None = None,
            source: str = SOURCE) -> list[tuple[str, dict[str, Any]]]:
    """Store the events of one decrypted callback as the connector would; (status, event as journeys see it)."""
    out = []
    for event in events_from_callback(xml):
        if profile:
            event["profile"] = {**event.get("profile", {}), **profile,
                                "attributes": {**event.get("profile", {}).get("attributes", {}),
                                               **profile.get("attributes", {})}}
        status, payload, _ = ingest.store(ingest.EventIn.model_validate({**event, "source": source}), db_url)
        out.append((status, payload))
    return out


def midday_zone(now: datetime) -> str:
    """An IANA zone whose clock reads about noon at ``now``, so a test that moves a few hours on stays
    within one local day (a cap counted per Shanghai day resets at 16:00 UTC)."""
    offset = 12 - now.astimezone(UTC).hour  # -11..12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # the Etc names' sign is inverted


def make_campaign(db_url: str, campaign_id: str = "laodaixin", *, goal: int = 3, rules: dict[str, Any] | None = None,
                  risk: dict[str, Any] | None = None, budget: int | None = None, no: int = 1,
                  staff: tuple[str, ...] = ("zhangsan",), starts: datetime | None = None,
                  ends: datetime | None = None) -> None:
    now = datetime.now(UTC)
    with transaction(db_url) as db:
        db.add(ReferralCampaign(id=campaign_id, no=no, name="老带新", status="active", goal=goal,
                                starts_at=starts or now - timedelta(days=1), ends_at=ends or now + timedelta(days=7),
                                rules=rules or {}, risk=risk or {}, reward_budget=budget, connector_id=SOURCE,
                                staff=list(staff), tags=["老带新"], welcome={"text": "欢迎 {{ customer.name }}"}))


def follow_ups(db_url: str, customer_id: str | None = None, type_: str = "referral.progress") -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        query = select(models.EventRecord).where(models.EventRecord.type == type_).order_by(models.EventRecord.id)
        if customer_id:
            query = query.where(models.EventRecord.customer_id == customer_id)
        return [dict(e.payload) for e in db.scalars(query)]


def customer_of(db_url: str, kind: str, value: str) -> str:
    with session_factory(db_url)() as db:
        row = db.get(models.Identity, (kind, value))
        assert row is not None, f"no customer with {kind}={value}"
        return row.customer_id


def three_friends_campaign(db_url: str, fake: FakeWeCom) -> tuple[str, Any]:
    """The shipped 老带新 set-up: the campaign (goal 3), its coupon, the published referral-three-friends flow,
    an inviter who added through the house code and joined, and the inviter's personal code; (inviter, code)."""
    from activities.growth import campaigns, channels
    from activities.growth.action_referral_join import participant_key
    from activities.growth.channels import ChannelSpec
    from engine import flows as flowsvc

    make_campaign(db_url, goal=3)
    with transaction(db_url) as db:
        db.add(models.CouponCampaign(id="referral-30", name="裂变券", value_fen=3000, status="active"))
        flowsvc.save_draft(db, json.loads((FLOWS / "referral-three-friends.json").read_text("utf-8")), "test")
        flowsvc.publish(db, "referral-three-friends", "test")
    now = datetime.now(UTC)
    house = channels.create_channel(db_url, ChannelSpec(key="house", name="门店", staff=["zhangsan"]), "t", now)
    (_, joined), = deliver(db_url, fake.scan_and_add(str(house.config_id), "wmINVITER", name="老王")[0],
                           profile={"name": "老王"})
    inviter = str(joined["customer_id"])
    with transaction(db_url) as db:
        campaign = campaigns.get_campaign(db, "laodaixin")
        participant, _ = campaigns.join(db, campaign, inviter, now)
        state, key, pid = (campaigns.participant_state(campaign, participant),
                           participant_key(campaign.no, participant.id), participant.id)
    code = channels.create_channel(db_url, ChannelSpec(key=key, name="personal", staff=["lisi"]), "t", now,
                                   purpose="referral", campaign_id="laodaixin", state=state)
    with transaction(db_url) as db:
        row = db.get(campaigns.ReferralParticipant, pid)
        assert row is not None
        row.channel_id = code.id
    return inviter, code


def store_one(db_url: str, xml: str) -> Any:
    """Store the first event of one decrypted callback as the connector would; what ``ingest.store`` answers."""
    event = events_from_callback(xml)[0]
    return ingest.store(ingest.EventIn.model_validate({**event, "source": SOURCE}), db_url)
