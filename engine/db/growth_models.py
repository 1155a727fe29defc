"""Growth tables: channel codes (渠道活码) and their adds, referral campaigns (裂变) with participants,
invites, rewards and a blocklist. Domain rules live in activities/growth; these are the rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class GrowthChannel(Base):
    """A channel code: a WeCom contact way (or an OA parametric QR code) whose ``state`` names it.
    ``id`` is the channel number written into the state (activities/growth/states.py)."""

    __tablename__ = "growth_channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the marketer's name for it in flows and filters (``event.payload.channel``); unique
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: wecom (contact way) or wechat_oa (parametric QR code)
    platform: Mapped[str] = mapped_column(String(20), default="wecom")
    #: channel (a marketer's code) or referral (a participant's personal code)
    purpose: Mapped[str] = mapped_column(String(20), default="channel")
    state: Mapped[str] = mapped_column(String(64), unique=True)
    connector_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    #: what the platform gave back: WeCom config_id and qr_code, the OA ticket and url
    config_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    qr_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: 1 single, 2 multi-person (WeCom ``type``); OA: 0
    contact_type: Mapped[int] = mapped_column(Integer, default=2)
    skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    staff: Mapped[list[Any]] = mapped_column(default=list)
    departments: Mapped[list[Any]] = mapped_column(default=list)
    schedule: Mapped[list[Any]] = mapped_column(default=list)
    backup: Mapped[list[Any]] = mapped_column(default=list)
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: all (WeCom spreads adds over the members on duty) or rotate (one member at a time, in turn)
    mode: Mapped[str] = mapped_column(String(10), default="all")
    #: the members the platform offers now, and who took the last add
    current_users: Mapped[list[Any]] = mapped_column(default=list)
    last_assigned: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    #: {"text": "...", "attachments": ["https://…png"]}
    welcome: Mapped[dict[str, Any]] = mapped_column(default=dict)
    remark: Mapped[str] = mapped_column(String(30), default="")
    timezone: Mapped[str] = mapped_column(String(60), default="Asia/Shanghai")
    #: active, disabled, deleted
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    #: scans the platform reported (OA SCAN/subscribe events); WeCom does not report scans
    scans: Mapped[int] = mapped_column(Integer, default=0)
    #: the platform's last refusal, shown where the marketer looks
    sync_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelAdd(Base):
    """One customer arriving through a channel code: a WeCom add (or OA subscribe / scan), with what
    happened to the channel's welcome message and whether the friend was deleted later."""

    __tablename__ = "growth_channel_adds"
    __table_args__ = (Index("ix_growth_adds_channel_at", "channel_id", "added_at"),
                      Index("ix_growth_adds_customer_user", "customer_id", "user_id"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("growth_channels.id"))
    #: the event that carried it (``source:external_id``): a redelivery never adds twice
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(12), default="add")  # add, subscribe, scan
    customer_id: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: pending, sent, no_code (console welcome or an earlier chat), used (41051), other_app (41096),
    #: expired, failed, none (the channel has no welcome)
    welcome_status: Mapped[str] = mapped_column(String(20), default="pending")
    welcome_detail: Mapped[str] = mapped_column(Text, default="")


class ReferralCampaign(Base):
    """A referral campaign (裂变活动). ``no`` is the campaign number written into participants' states."""

    __tablename__ = "growth_campaigns"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    no: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: draft, active, paused, ended
    status: Mapped[str] = mapped_column(String(12), default="draft")
    goal: Mapped[int] = mapped_column(Integer, default=3)
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: invite rules: new_customers_only, min_friend_duration (ISO), no_self_invites, deletion_revokes
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: risk rules: review_at, reject_at, fast_count, fast_window (ISO), … (activities/growth/risk.py)
    risk: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: reward stock: at most this many participants are rewarded (None: no limit)
    reward_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rewards_issued: Mapped[int] = mapped_column(Integer, default=0)
    connector_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    #: who answers participants' codes, and what the codes do on an add
    staff: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    welcome: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: poster layout: {"background": url or "", "title": "…", "qr": {"x", "y", "size"}}
    poster: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flow_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferralParticipant(Base):
    """A customer taking part in a campaign, with their personal code. ``id`` is the participant number."""

    __tablename__ = "growth_participants"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_id", name="uq_growth_participants_customer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("growth_campaigns.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("growth_channels.id"), nullable=True)
    valid_count: Mapped[int] = mapped_column(Integer, default=0)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    goal_reached_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ReferralInvite(Base):
    """One friend added through a participant's code, and whether it counts (activities/growth/invites.py).

    ``claim`` is the invitee for invites that hold them (every status but ``rejected``); it is unique per
    campaign, so one customer counts once per campaign however many staff or codes they add."""

    __tablename__ = "growth_invites"
    __table_args__ = (UniqueConstraint("campaign_id", "claim", name="uq_growth_invites_claim"),
                      Index("ix_growth_invites_participant", "participant_id", "status"),
                      Index("ix_growth_invites_campaign_status", "campaign_id", "status"),
                      Index("ix_growth_invites_device", "campaign_id", "device"),
                      Index("ix_growth_invites_ip", "campaign_id", "ip"),
                      Index("ix_growth_invites_address", "campaign_id", "address"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("growth_campaigns.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("growth_participants.id"))
    invitee_id: Mapped[str] = mapped_column(String(40), index=True)
    claim: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    added_at: Mapped[datetime]
    #: pending, valid, review, rejected, revoked, left
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(60), default="")
    risk_score: Mapped[int] = mapped_column(Integer, default=0)
    risk: Mapped[dict[str, Any]] = mapped_column(default=dict)
    qualifies_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    counted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: what a mini-program or shop reported of the invitee, for the shared-device rule (indexed)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ReferralReward(Base):
    """The one reward of a participant in a campaign: unique, so duplicate callbacks, concurrent journeys
    and retries issue it once."""

    __tablename__ = "growth_rewards"
    __table_args__ = (UniqueConstraint("campaign_id", "participant_id", name="uq_growth_rewards_participant"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("growth_campaigns.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("growth_participants.id"))
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    #: issuing (claimed, the reward node is running), issued, failed
    status: Mapped[str] = mapped_column(String(12))
    reward_type: Mapped[str] = mapped_column(String(120))
    #: the idempotency key the reward node runs under (one per participant)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    #: the reward node's outcome, and ``claimant``: the journey visit (its idempotency key) holding the claim,
    #: the one whose answer is ``out`` (activities/growth/campaigns.py: claim_reward)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(nullable=True)


class GrowthBlock(Base):
    """A blocklist entry for referral campaigns (防羊毛): an identity, a device, an IP or an address."""

    __tablename__ = "growth_blocklist"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
