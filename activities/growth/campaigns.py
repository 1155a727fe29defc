"""Referral campaigns (裂变) in the database: participants and their codes, invites counted by the rules
of activities/growth/invites.py and scored by activities/growth/risk.py, the review queue, rewards
issued exactly once, leaderboard and funnel.

Everything here runs inside the caller's transaction (the event hook's, an action's, an API call's).
Changes that journeys care about become ``referral.progress`` follow-up events for the *inviter*
(:func:`engine.events.record_follow_up`): ``change`` is ``pending``, ``counted``, ``review``,
``rejected``, ``revoked``, ``left`` or ``goal_reached`` (once per participant), with ``valid``,
``goal`` and ``remaining`` — so a flow can say "还差 {{ event.payload.remaining }} 位好友".

Concurrency: every change to a participant's count locks the participant row first (``FOR UPDATE``
on PostgreSQL; SQLite's write transaction is already exclusive); an invitee is claimed by a unique
(campaign, claim) row, so two adds of one customer count once; a reward is a unique (campaign,
participant) row, so concurrent journeys and redelivered callbacks issue it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.growth import invites, risk
from activities.growth.states import referral_state
from engine.auth import audit
from engine.customers import aliases, canonical, parse_time
from engine.db import models
from engine.db.growth_models import (
    GrowthBlock,
    GrowthChannel,
    ReferralCampaign,
    ReferralInvite,
    ReferralParticipant,
    ReferralReward,
)
from engine.durations import parse_duration
from engine.events import record_follow_up
from engine.text import Msg, MsgError

SOURCE = "referral"


class CampaignError(MsgError):
    """A campaign operation that cannot be done, said so a person can act on it."""


# -- rules -------------------------------------------------------------------------------------------------
def invite_rules(campaign: ReferralCampaign) -> invites.InviteRules:
    rules = campaign.rules or {}
    return invites.InviteRules(
        starts_at=campaign.starts_at, ends_at=campaign.ends_at,
        new_customers_only=bool(rules.get("new_customers_only", True)),
        min_friend_duration=parse_duration(str(rules["min_friend_duration"])) if rules.get("min_friend_duration")
        else timedelta(0),
        no_self_invites=bool(rules.get("no_self_invites", True)),
        deletion_revokes=bool(rules.get("deletion_revokes", True)))


def risk_rules(campaign: ReferralCampaign) -> risk.RiskRules:
    data = dict(campaign.risk or {})
    kwargs: dict[str, Any] = {}
    for name in ("fast_count", "leaver_count", "shared_count", "review_at", "reject_at"):
        if data.get(name) is not None:
            kwargs[name] = int(data[name])
    for name in ("fast_window", "new_account_age"):
        if data.get(name):
            kwargs[name] = parse_duration(str(data[name]))
    if isinstance(data.get("points"), dict):
        kwargs["points"] = {**risk.DEFAULT_POINTS, **{k: int(v) for k, v in data["points"].items()}}
    return risk.RiskRules(**kwargs)



def known_since(db: Session, customer_ids: list[str], event_id: int | None, added_at: datetime) -> datetime | None:
    """When Tideflow first knew any of these customers, other than through this add (None: never)."""
    earliest = db.scalar(select(func.min(models.EventRecord.occurred_at)).where(
        models.EventRecord.customer_id.in_(customer_ids),
        models.EventRecord.id != (event_id or -1), models.EventRecord.type.not_like("referral.%"),
        models.EventRecord.type.not_like("loyalty.%")))
    created = db.scalar(select(func.min(models.Customer.created_at)).where(models.Customer.id.in_(customer_ids)))
    # a customer created by this very add is new; one that existed a while before is not
    if created is not None and created > added_at - timedelta(minutes=1):
        created = None
    candidates = [t for t in (earliest, created) if t is not None]
    return min(candidates) if candidates else None


# -- campaigns and participants ----------------------------------------------------------------------------
class InviteRulesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_customers_only: bool = True
    min_friend_duration: str | None = Field(default="P1D", description="ISO 8601, e.g. P1D; null: counts at once")
    no_self_invites: bool = True
    deletion_revokes: bool = True

    @field_validator("min_friend_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value:
            parse_duration(value)
        return value or None


class RiskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    review_at: int = Field(default=50, ge=1, le=100)
    reject_at: int | None = Field(default=None, ge=1, le=100)
    fast_count: int = Field(default=5, ge=2, le=1000)
    fast_window: str = Field(default="PT10M")
    leaver_count: int = Field(default=2, ge=1, le=1000)
    new_account_age: str = Field(default="P7D")
    shared_count: int = Field(default=2, ge=1, le=1000)
    points: dict[str, int] = Field(default_factory=dict, description="rule → points, e.g. {\"no_avatar\": 20}")

    @field_validator("fast_window", "new_account_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("points")
    @classmethod
    def _rules(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(risk.DEFAULT_POINTS))
        if unknown:
            raise ValueError(Msg("unknown risk rules %(unknown)s; the rules are %(value)s",
                                 unknown=unknown, value=sorted(risk.DEFAULT_POINTS)))
        if any(not 0 <= v <= 100 for v in value.values()):
            raise ValueError(Msg("rule points are 0 to 100"))
        return value


class CampaignSpec(BaseModel):
    """A referral campaign as the marketer describes it (POST/PUT /api/growth/campaigns)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,79}$", examples=["laodaixin-2026"])
    name: str = Field(min_length=1, max_length=200, examples=["老带新：邀请 3 位好友得 30 元券"])
    goal: int = Field(default=3, ge=1, le=1000, description="valid invites needed for the reward")
    starts_at: datetime
    ends_at: datetime
    reward_budget: int | None = Field(default=None, ge=0, le=10_000_000, description="at most this many rewards")
    connector_id: str | None = None
    staff: list[str] = Field(min_length=1, max_length=100, description="WeCom UserIDs answering participants' codes")
    tags: list[str] = Field(default_factory=list, max_length=20)
    welcome: dict[str, Any] = Field(default_factory=dict, description="welcome for invitees: {text, attachments}")
    poster: dict[str, Any] = Field(default_factory=dict)
    rules: InviteRulesSpec = Field(default_factory=InviteRulesSpec)
    risk: RiskSpec = Field(default_factory=RiskSpec)
    flow_id: str | None = Field(default=None, description="the campaign's flow (e.g. referral-three-friends)")

    @model_validator(mode="after")
    def _window(self) -> CampaignSpec:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError(Msg("starts_at and ends_at need a timezone, e.g. 2026-12-01T00:00:00+08:00"))
        if self.ends_at <= self.starts_at:
            raise ValueError(Msg("ends_at must be after starts_at"))
        return self


def save_campaign(db: Session, spec: CampaignSpec, actor: str, now: datetime, *, status: str | None = None
                  ) -> ReferralCampaign:
    """Create or update a campaign (its number stays); audited with before and after."""
    campaign = db.scalar(select(ReferralCampaign).where(ReferralCampaign.id == spec.id).with_for_update())
    before = None
    if campaign is None:
        campaign = ReferralCampaign(id=spec.id, no=next_campaign_no(db), created_by=actor, created_at=now,
                                    status="draft")
        db.add(campaign)
    else:
        before = {"goal": campaign.goal, "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
                  "rules": campaign.rules, "risk": campaign.risk, "reward_budget": campaign.reward_budget,
                  "status": campaign.status}
        if campaign.rewards_issued and spec.reward_budget is not None and spec.reward_budget < campaign.rewards_issued:
            raise CampaignError(Msg("%(rewards_issued)s rewards are already given; the budget cannot be "
                                    "lower",
                                    rewards_issued=campaign.rewards_issued))
    campaign.name, campaign.goal = spec.name, spec.goal
    campaign.starts_at, campaign.ends_at, campaign.reward_budget = spec.starts_at, spec.ends_at, spec.reward_budget
    campaign.connector_id, campaign.staff, campaign.tags = spec.connector_id, list(spec.staff), list(spec.tags)
    campaign.welcome, campaign.poster, campaign.flow_id = dict(spec.welcome), dict(spec.poster), spec.flow_id
    campaign.rules = spec.rules.model_dump()
    campaign.risk = spec.risk.model_dump(exclude_none=True)
    if status is not None:
        if status not in ("draft", "active", "paused", "ended"):
            raise CampaignError(Msg("unknown status '%(status)s'; use draft, active, paused or ended",
                                    status=status))
        campaign.status = status
    campaign.updated_at = now
    db.flush()
    audit(db, actor, "referral.campaign_saved", f"campaign:{spec.id}", before=before,
          after={"goal": campaign.goal, "ends_at": spec.ends_at.isoformat(), "rules": campaign.rules,
                 "risk": campaign.risk, "reward_budget": campaign.reward_budget, "status": campaign.status})
    return campaign


def get_campaign(db: Session, campaign_id: str, *, lock: bool = False) -> ReferralCampaign:
    query = select(ReferralCampaign).where(ReferralCampaign.id == campaign_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    campaign = db.scalar(query)
    if campaign is None:
        raise CampaignError(Msg("referral campaign '%(campaign_id)s' does not exist; create it first",
                                campaign_id=campaign_id))
    return campaign


def next_campaign_no(db: Session) -> int:
    return int(db.scalar(select(func.max(ReferralCampaign.no))) or 0) + 1


def participant_of(db: Session, campaign_id: str, customer_id: str) -> ReferralParticipant | None:
    return db.scalar(select(ReferralParticipant).where(ReferralParticipant.campaign_id == campaign_id,
                                                       ReferralParticipant.customer_id.in_(aliases(db, customer_id))))


def join(db: Session, campaign: ReferralCampaign, customer_id: str, now: datetime) -> tuple[ReferralParticipant, bool]:
    """The customer's participation (created once): (participant, created). The personal code is made by
    activities/growth/channels.py (it calls WeCom), which fills ``channel_id``."""
    if campaign.status != "active":
        raise CampaignError(Msg("campaign '%(id)s' is %(status)s; only active campaigns take "
                                "participants",
                                id=campaign.id, status=campaign.status))
    if campaign.ends_at is not None and now >= campaign.ends_at:
        raise CampaignError(Msg("campaign '%(id)s' ended at %(ends_at)s",
                                id=campaign.id, ends_at=campaign.ends_at.isoformat()))
    survivor = canonical(db, customer_id)
    found = participant_of(db, campaign.id, survivor)
    if found is not None:
        return found, False
    try:
        with db.begin_nested():
            participant = ReferralParticipant(campaign_id=campaign.id, customer_id=survivor, joined_at=now)
            db.add(participant)
            db.flush()
    except IntegrityError:
        again = participant_of(db, campaign.id, survivor)
        assert again is not None
        return again, False
    return participant, True


def participant_state(campaign: ReferralCampaign, participant: ReferralParticipant) -> str:
    return referral_state(campaign.no, participant.id)


# -- invites ------------------------------------------------------------------------------------------------
def _lock_participant(db: Session, participant_id: int) -> ReferralParticipant:
    row = db.scalar(select(ReferralParticipant).where(ReferralParticipant.id == participant_id)
                    .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


def _progress(db: Session, campaign: ReferralCampaign, participant: ReferralParticipant, change: str,
              invite: ReferralInvite | None, at: datetime) -> None:
    left = invites.remaining(participant.valid_count, campaign.goal)
    payload = {"campaign": campaign.id, "change": change, "valid": participant.valid_count, "goal": campaign.goal,
               "remaining": left, "participant": participant.id,
               "invite": invite.id if invite else None, "reason": invite.reason if invite else ""}
    ident = f"{campaign.id}:{participant.id}:{invite.id if invite else 0}:{change}"
    record_follow_up(db, source=SOURCE, external_id=ident, type="referral.progress",
                     customer_id=participant.customer_id, payload=payload, occurred_at=at)
    if change == "counted" and left == 0 and participant.goal_reached_at is None:
        participant.goal_reached_at = at
        record_follow_up(db, source=SOURCE, external_id=f"{campaign.id}:{participant.id}:goal",
                         type="referral.progress", customer_id=participant.customer_id,
                         payload={**payload, "change": "goal_reached"}, occurred_at=at)


#: profile attribute → invite column of the shared-device rule
MARKERS = {"device_id": "device", "ip": "ip", "address": "address"}


def _markers(attributes: dict[str, Any]) -> dict[str, str]:
    """The invitee's device / IP / address, as the invite stores them (at most 200 characters each)."""
    return {MARKERS[k]: str(attributes[k])[:200] for k in MARKERS if attributes.get(k)}


def _blocklisted(db: Session, pairs: list[tuple[str, str]]) -> list[str]:
    hits = []
    for kind, value in pairs:
        if value and db.get(GrowthBlock, (kind, value)) is not None:
            hits.append(kind)
    return sorted(set(hits))


def register_invite(db: Session, campaign: ReferralCampaign, participant: ReferralParticipant, *,
                    invitee_id: str, user_id: str, event_key: str, event_id: int | None,
                    added_at: datetime) -> ReferralInvite | None:
    """Record an add through a participant's code and decide what it is (None: already recorded)."""
    if db.scalar(select(ReferralInvite.id).where(ReferralInvite.event_key == event_key)) is not None:
        return None
    participant = _lock_participant(db, participant.id)
    invitee_aliases = aliases(db, invitee_id)
    survivor = invitee_aliases[0]
    inviter_aliases = aliases(db, participant.customer_id)
    rules = invite_rules(campaign)
    held = db.scalar(select(ReferralInvite.id).where(ReferralInvite.campaign_id == campaign.id,
                                                     ReferralInvite.claim.in_(invitee_aliases)))
    verdict = invites.judge(rules, invites.InviteFacts(
        added_at=added_at, same_person=survivor in inviter_aliases,
        known_since=known_since(db, invitee_aliases, event_id, added_at), already_invited=held is not None,
        campaign_active=campaign.status == "active"))
    customer = db.get(models.Customer, survivor)
    attributes = dict(customer.attributes or {}) if customer else {}
    markers = _markers(attributes)
    score = risk.RiskScore(0, [], "pass")
    if verdict.status != "rejected":
        recent = list(db.scalars(select(ReferralInvite.added_at).where(
            ReferralInvite.participant_id == participant.id, ReferralInvite.added_at <= added_at)))
        leavers = db.scalar(select(func.count()).select_from(ReferralInvite).where(
            ReferralInvite.participant_id == participant.id, ReferralInvite.status == "left")) or 0
        shared: dict[str, int] = {}
        for kind, value in markers.items():
            column = getattr(ReferralInvite, kind)
            shared[kind] = int(db.scalar(select(func.count()).select_from(ReferralInvite).where(
                ReferralInvite.campaign_id == campaign.id, column == value)) or 0)
        identities = [(i.kind, i.value) for i in db.scalars(select(models.Identity).where(
            models.Identity.customer_id.in_(invitee_aliases + inviter_aliases)))]
        score = risk.score(risk_rules(campaign), risk.RiskFacts(
            added_at=added_at, inviter_recent=recent, inviter_leavers=int(leavers),
            invitee_name=None if attributes.get("wecom_has_nickname") is None else (
                ((customer.name if customer else "") or "") if attributes.get("wecom_has_nickname") else ""),
            invitee_has_avatar=attributes.get("wecom_has_avatar") if isinstance(
                attributes.get("wecom_has_avatar"), bool) else None,
            invitee_registered_at=parse_time(attributes.get("registered_at")),
            shared_markers=shared,
            blocklisted=_blocklisted(db, [*identities, ("customer", survivor), ("customer", participant.customer_id),
                                          *markers.items()])))
        if score.decision == "reject":
            verdict = invites.Verdict("rejected", "risk")
        elif score.decision == "review":
            verdict = invites.Verdict("review", "risk")
    invite = ReferralInvite(campaign_id=campaign.id, participant_id=participant.id, invitee_id=survivor,
                            claim=None if verdict.status == "rejected" else survivor, user_id=user_id,
                            event_key=event_key, added_at=added_at, status=verdict.status, reason=verdict.reason,
                            risk_score=score.score, risk=score.as_dict(), **markers,
                            qualifies_at=invites.qualifies_at(rules, added_at) if verdict.status == "pending" else None)
    try:
        with db.begin_nested():
            db.add(invite)
            db.flush()
    except IntegrityError:
        # the same customer was claimed by a concurrent add: this one is a duplicate
        invite = ReferralInvite(campaign_id=campaign.id, participant_id=participant.id, invitee_id=survivor, claim=None,
                                user_id=user_id, event_key=event_key, added_at=added_at, status="rejected",
                                reason="duplicate", **markers)
        db.add(invite)
        db.flush()
    if invite.status == "valid":
        _count(db, campaign, participant, invite, added_at)
    else:
        _progress(db, campaign, participant, invite.status, invite, added_at)
    return invite


def _count(db: Session, campaign: ReferralCampaign, participant: ReferralParticipant, invite: ReferralInvite,
           at: datetime) -> None:
    invite.status, invite.counted_at, invite.qualifies_at = "valid", at, None
    participant.valid_count += 1
    db.flush()
    _progress(db, campaign, participant, "counted", invite, at)


def qualify_due(db: Session, now: datetime, campaign_id: str | None = None, limit: int = 500) -> int:
    """Pending invites whose minimum friend duration has passed with the friend still there become valid."""
    query = select(ReferralInvite).where(ReferralInvite.status == "pending", ReferralInvite.qualifies_at <= now)
    if campaign_id:
        query = query.where(ReferralInvite.campaign_id == campaign_id)
    done = 0
    for invite in list(db.scalars(query.order_by(ReferralInvite.qualifies_at).limit(limit))):
        campaign = get_campaign(db, invite.campaign_id)
        participant = _lock_participant(db, invite.participant_id)
        fresh = db.scalar(select(ReferralInvite).where(ReferralInvite.id == invite.id).with_for_update()
                          .execution_options(populate_existing=True))
        if fresh is None or fresh.status != "pending" or fresh.removed_at is not None:
            continue
        _count(db, campaign, participant, fresh, max(now, fresh.qualifies_at or now))
        done += 1
    return done


def friend_deleted(db: Session, customer_id: str, user_id: str, at: datetime) -> int:
    """A friend deletion (either side): invites of this customer with this staff member leave or are revoked."""
    ids = aliases(db, customer_id)
    changed = 0
    query = select(ReferralInvite).where(ReferralInvite.invitee_id.in_(ids), ReferralInvite.removed_at.is_(None),
                                         ReferralInvite.status.in_(("pending", "valid", "review")))
    if user_id:
        query = query.where(ReferralInvite.user_id == user_id)
    for invite in list(db.scalars(query)):
        campaign = get_campaign(db, invite.campaign_id)
        participant = _lock_participant(db, invite.participant_id)
        rewarded = db.scalar(select(ReferralReward.id).where(
            ReferralReward.campaign_id == campaign.id, ReferralReward.participant_id == participant.id)) is not None
        invite.removed_at = at
        verdict = invites.after_deletion(invite_rules(campaign), invite.status, at, rewarded=rewarded)
        if verdict is None:
            continue
        if invite.status == "valid":
            participant.valid_count = max(0, participant.valid_count - 1)
        invite.status, invite.reason = verdict.status, verdict.reason
        db.flush()
        _progress(db, campaign, participant, verdict.status, invite, at)
        changed += 1
    return changed


# -- review queue ---------------------------------------------------------------------------------------------
def review_queue(db: Session, campaign_id: str | None = None, limit: int = 200) -> list[ReferralInvite]:
    query = select(ReferralInvite).where(ReferralInvite.status == "review")
    if campaign_id:
        query = query.where(ReferralInvite.campaign_id == campaign_id)
    return list(db.scalars(query.order_by(ReferralInvite.added_at).limit(limit)))


def decide(db: Session, invite_id: int, approve: bool, actor: str, reason: str, now: datetime) -> ReferralInvite:
    """A reviewer's decision on a risky invite, audited with before and after."""
    invite = db.scalar(select(ReferralInvite).where(ReferralInvite.id == invite_id).with_for_update()
                       .execution_options(populate_existing=True))
    if invite is None:
        raise CampaignError(Msg("invite %(invite_id)s does not exist", invite_id=invite_id))
    if invite.status != "review":
        raise CampaignError(Msg("invite %(invite_id)s is %(status)s, not waiting for review; reload "
                                "the queue",
                                invite_id=invite_id, status=invite.status))
    if not reason.strip():
        raise CampaignError(Msg("say why (reason): decisions are audited"))
    campaign = get_campaign(db, invite.campaign_id)
    participant = _lock_participant(db, invite.participant_id)
    before = invite.status
    invite.reviewed_by, invite.reviewed_at = actor, now
    if approve:
        rules = invite_rules(campaign)
        due = invites.qualifies_at(rules, invite.added_at)
        if due > now:
            invite.status, invite.reason, invite.qualifies_at = "pending", "approved", due
            db.flush()
            _progress(db, campaign, participant, "pending", invite, now)
        else:
            invite.reason = "approved"
            _count(db, campaign, participant, invite, now)
    else:
        invite.status, invite.reason, invite.claim = "rejected", "reviewer", None
        db.flush()
        _progress(db, campaign, participant, "rejected", invite, now)
    audit(db, actor, "referral.invite_approved" if approve else "referral.invite_rejected",
          f"invite:{invite.id}", {"campaign": campaign.id, "reason": reason[:500], "risk": invite.risk},
          before={"status": before}, after={"status": invite.status})
    return invite


# -- rewards --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a participant's reward: ``granted`` (this caller holds the claim and runs the
    reward under ``key`` — claimed now, its own claim resumed after a crash or redelivery, or one whose
    reward failed taken over), ``issued`` / ``issuing`` (another caller's claim: given, or not finished),
    or a refusal."""

    status: str
    key: str = ""
    reward: ReferralReward | None = None
    message: str = ""


def reward_key(campaign_id: str, participant_id: int) -> str:
    return f"referral-reward/{campaign_id}/{participant_id}"


def claimant_of(reward: ReferralReward) -> str:
    """Who holds the reward's claim: the idempotency key of the journey visit that claimed it (kept in
    ``result``, beside the reward node's outcome), "" for a claim made before claimants were recorded."""
    return str((reward.result or {}).get("claimant") or "")


def claim_reward(db: Session, campaign_id: str, customer_id: str, reward_type: str, now: datetime,
                 claimant: str = "") -> Claim:
    """Claim the one reward of this participant: budget and goal checked under the campaign's lock.

    ``claimant`` names the caller (a journey visit's idempotency key). The claim is the claimant's: its own
    retry or redelivery gets ``granted`` back (it is the one that gives the reward, however often it asks),
    every other caller ``issued`` / ``issuing``. A claim whose reward failed passes to the next caller."""
    campaign = get_campaign(db, campaign_id, lock=True)
    participant = participant_of(db, campaign.id, customer_id)
    if participant is None:
        return Claim("not_participant", message=f"the customer does not take part in '{campaign.id}'")
    participant = _lock_participant(db, participant.id)
    existing = db.scalar(select(ReferralReward).where(ReferralReward.campaign_id == campaign.id,
                                                      ReferralReward.participant_id == participant.id))
    if existing is not None:
        if claimant and claimant_of(existing) == claimant:
            return Claim("granted", existing.key, existing, "this caller's claim, resumed")
        if existing.status == "failed" and claimant:
            existing.status, existing.result, existing.issued_at = "issuing", {"claimant": claimant}, None
            db.flush()
            return Claim("granted", existing.key, existing, "a failed reward taken over")
        return Claim(existing.status if existing.status != "failed" else "issuing", existing.key, existing,
                     "one reward per participant")
    if participant.valid_count < campaign.goal:
        return Claim("goal_not_reached", message=f"{participant.valid_count} of {campaign.goal} valid invites")
    if campaign.reward_budget is not None and campaign.rewards_issued >= campaign.reward_budget:
        return Claim("budget_exhausted", message=f"all {campaign.reward_budget} rewards are given out")
    counted = db.execute(update(ReferralCampaign).where(
        ReferralCampaign.id == campaign.id,
        (ReferralCampaign.reward_budget.is_(None)) | (ReferralCampaign.rewards_issued < ReferralCampaign.reward_budget))
        .values(rewards_issued=ReferralCampaign.rewards_issued + 1).execution_options(synchronize_session=False))
    if getattr(counted, "rowcount", 1) != 1:
        return Claim("budget_exhausted", message=f"all {campaign.reward_budget} rewards are given out")
    key = reward_key(campaign.id, participant.id)
    reward = ReferralReward(campaign_id=campaign.id, participant_id=participant.id, customer_id=participant.customer_id,
                            status="issuing", reward_type=reward_type, key=key, created_at=now,
                            result={"claimant": claimant} if claimant else {})
    db.add(reward)
    db.flush()
    return Claim("granted", key, reward)


def finish_reward(db: Session, key: str, result: dict[str, Any], ok: bool, actor: str, now: datetime,
                  claimant: str = "") -> None:
    """Write down the reward node's outcome. A failure seen by a caller that does not hold the claim leaves
    the claim alone: its holder is still running (or will be retried) and settles it."""
    reward = db.scalar(select(ReferralReward).where(ReferralReward.key == key).with_for_update()
                       .execution_options(populate_existing=True))
    if reward is None or reward.status == "issued":
        return
    holder = claimant_of(reward)
    if not ok and claimant and holder and holder != claimant:
        return
    reward.status = "issued" if ok else "failed"
    reward.result = {**result, "claimant": holder} if holder else result
    reward.issued_at = now if ok else None
    audit(db, actor, "referral.reward_issued" if ok else "referral.reward_failed", f"reward:{reward.id}",
          {"campaign": reward.campaign_id, "customer": reward.customer_id, "type": reward.reward_type,
           "result": result})


# -- leaderboard and funnel -----------------------------------------------------------------------------------
def leaderboard(db: Session, campaign_id: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = db.execute(select(ReferralParticipant, models.Customer.name).join(
        models.Customer, models.Customer.id == ReferralParticipant.customer_id, isouter=True)
        .where(ReferralParticipant.campaign_id == campaign_id)
        .order_by(ReferralParticipant.valid_count.desc(), ReferralParticipant.goal_reached_at.asc().nulls_last(),
                  ReferralParticipant.id).limit(limit)).all()
    rewarded = {r.participant_id: r.status for r in db.scalars(
        select(ReferralReward).where(ReferralReward.campaign_id == campaign_id))}
    pending = dict(db.execute(select(ReferralInvite.participant_id, func.count()).where(
        ReferralInvite.campaign_id == campaign_id, ReferralInvite.status.in_(("pending", "review")))
        .group_by(ReferralInvite.participant_id)).all())
    return [{"rank": i + 1, "participant": p.id, "customer_id": p.customer_id, "name": name or "",
             "valid": p.valid_count, "waiting": int(pending.get(p.id, 0)),
             "goal_reached_at": p.goal_reached_at.isoformat() if p.goal_reached_at else None,
             "reward": rewarded.get(p.id)} for i, (p, name) in enumerate(rows)]


def funnel(db: Session, campaign_id: str) -> dict[str, int]:
    """Participants → invites (adds) → not rejected → counted (ever) → still valid → goal reached → rewarded."""
    def count(model: Any, *where: Any) -> int:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    inv = ReferralInvite
    return {
        "participants": count(ReferralParticipant, ReferralParticipant.campaign_id == campaign_id),
        "adds": count(inv, inv.campaign_id == campaign_id),
        "accepted": count(inv, inv.campaign_id == campaign_id, inv.status != "rejected"),
        "in_review": count(inv, inv.campaign_id == campaign_id, inv.status == "review"),
        "counted": count(inv, inv.campaign_id == campaign_id, inv.counted_at.is_not(None)),
        "valid": count(inv, inv.campaign_id == campaign_id, inv.status == "valid"),
        "revoked": count(inv, inv.campaign_id == campaign_id, inv.status.in_(("revoked", "left"))),
        "goal_reached": count(ReferralParticipant, ReferralParticipant.campaign_id == campaign_id,
                              ReferralParticipant.goal_reached_at.is_not(None)),
        "rewarded": count(ReferralReward, ReferralReward.campaign_id == campaign_id, ReferralReward.status == "issued"),
    }


def participant_for_state(db: Session, campaign_no: int, participant_no: int) -> tuple[ReferralCampaign,
                                                                                      ReferralParticipant] | None:
    campaign = db.scalar(select(ReferralCampaign).where(ReferralCampaign.no == campaign_no))
    participant = db.get(ReferralParticipant, participant_no)
    if campaign is None or participant is None or participant.campaign_id != campaign.id:
        return None
    return campaign, participant


def channel_of(db: Session, participant: ReferralParticipant) -> GrowthChannel | None:
    return db.get(GrowthChannel, participant.channel_id) if participant.channel_id else None
