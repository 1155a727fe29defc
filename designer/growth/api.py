"""Channel codes, referral campaigns and the review queue in the JSON API (docs/growth.md).

Thin routes over activities/growth: a spec is parsed by its model (422 naming the field), the service
calls WeCom and the database, refusals come back as the API's error shape with the platform's words.
Channel codes and campaigns need the marketer role; the review queue marketer or ops (admins pass).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.growth import campaigns, channels, qr
from activities.growth.channels import ChannelError, ChannelSpec
from designer import reading
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import GROWTH_EDITORS, GROWTH_REVIEWERS
from engine.auth import audit
from engine.customers import mask_identity
from engine.db.growth_models import ChannelAdd, GrowthBlock, GrowthChannel, ReferralCampaign, ReferralInvite
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

router = APIRouter(prefix="/api/growth", tags=["growth"])
Editor = Annotated[User, Depends(require(*GROWTH_EDITORS))]
Reviewer = Annotated[User, Depends(require(*GROWTH_REVIEWERS))]
DbUrl = Annotated[str, Depends(get_db_url)]
ChannelKey = Annotated[str, Query(max_length=60)]


def _now() -> datetime:
    return datetime.now(UTC)


def channel_error(exc: ChannelError) -> ApiError:
    fix = {409: Msg("see the message: pick another key, configure the connector, or free codes on WeCom"),
           404: Msg("check the channel key in GET /api/growth/channels"),
           502: Msg("WeCom refused or could not be reached: check the connector, then try again")}.get(
        exc.status, Msg("correct the field and send again"))
    return ApiError(exc.status, exc.message, fix, exc.field)


def _channel(db: Any, key: str) -> GrowthChannel:
    found = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key, GrowthChannel.status != "deleted"))
    if found is None:
        raise ApiError(404, Msg("channel '%(key)s' does not exist", key=key),
                       Msg("check the key in GET /api/growth/channels"), "key")
    return found


# -- channel codes -------------------------------------------------------------------------------------------
@router.get("/channels")
def list_channels(user: Editor, db_url: DbUrl, purpose: Literal["channel", "referral"] = "channel"
                  ) -> list[dict[str, Any]]:
    """Channel codes (referral participants' personal codes with ``purpose=referral``)."""
    with session_factory(db_url)() as db:
        rows = db.scalars(select(GrowthChannel).where(GrowthChannel.status != "deleted",
                                                      GrowthChannel.purpose == purpose)
                          .order_by(GrowthChannel.id.desc()).limit(500))
        return [channels.describe(c) for c in rows]


@router.post("/channels", status_code=201)
def create_channel(body: ChannelSpec, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    """Create the code on WeCom (add_contact_way) or the OA (qrcode/create) and store it."""
    try:
        made = channels.create_channel(db_url, body, user.username, _now())
    except ChannelError as exc:
        raise channel_error(exc) from None
    return channels.describe(made)


@router.get("/channels/{key}")
def get_channel(key: str, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    """The code, its statistics, and whether the welcome flow is published."""
    with session_factory(db_url)() as db:
        found = _channel(db, key)
        return {**channels.describe(found), "stats": channels.stats(db, found, _now()),
                "welcome_flow_active": channels.welcome_flow_active(db)}


@router.put("/channels/{key}")
def update_channel(key: str, body: ChannelSpec, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    try:
        return channels.describe(channels.update_channel(db_url, key, body, user.username, _now()))
    except ChannelError as exc:
        raise channel_error(exc) from None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "disabled"]


@router.post("/channels/{key}/status")
def channel_status(key: str, body: StatusIn, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    """Disable (the code is deleted on WeCom and stops working) or enable (a new code, same state)."""
    try:
        return channels.describe(channels.set_status(db_url, key, body.status, user.username, _now()))
    except ChannelError as exc:
        raise channel_error(exc) from None


@router.delete("/channels/{key}", status_code=204)
def delete_channel(key: str, user: Editor, db_url: DbUrl) -> Response:
    """Delete the code on WeCom (del_contact_way); its statistics stay."""
    try:
        channels.set_status(db_url, key, "deleted", user.username, _now())
    except ChannelError as exc:
        raise channel_error(exc) from None
    return Response(status_code=204)


@router.get("/channels/{key}/adds")
def channel_adds(key: str, user: Editor, db_url: DbUrl, limit: Annotated[int, Query(ge=1, le=500)] = 100
                 ) -> list[dict[str, Any]]:
    """The latest customers who came through the code, with what happened to the welcome."""
    with session_factory(db_url)() as db:
        found = _channel(db, key)
        rows = db.scalars(select(ChannelAdd).where(ChannelAdd.channel_id == found.id)
                          .order_by(ChannelAdd.id.desc()).limit(limit))
        return [{"customer_id": a.customer_id, "kind": a.kind, "user_id": a.user_id,
                 "added_at": a.added_at.isoformat(), "removed_at": a.removed_at.isoformat() if a.removed_at else None,
                 "welcome_status": a.welcome_status, "welcome_detail": a.welcome_detail} for a in rows]


def _qr_content(db_url: str, key: str) -> tuple[str, str]:
    with session_factory(db_url)() as db:
        found = _channel(db, key)
        if not found.qr_url:
            raise ApiError(409, Msg("channel '%(key)s' has no code on the platform (it is %(status)s)",
                                    key=key, status=found.status),
                           Msg("enable the channel to make a new code"), "key")
        return found.qr_url, found.name


@router.get("/channels/{key}/qr.png")
def channel_png(key: str, user: Editor, db_url: DbUrl, scale: Annotated[int, Query(ge=1, le=40)] = 10) -> Response:
    content, _ = _qr_content(db_url, key)
    return Response(qr.png(content, scale=scale), media_type="image/png",
                    headers={"Content-Disposition": f'inline; filename="{key}.png"'})


@router.get("/channels/{key}/qr.svg")
def channel_svg(key: str, user: Editor, db_url: DbUrl) -> Response:
    content, name = _qr_content(db_url, key)
    return Response(qr.svg(content, title=name), media_type="image/svg+xml",
                    headers={"Content-Disposition": f'attachment; filename="{key}.svg"'})


@router.get("/channels/{key}/poster.png")
def channel_poster(key: str, user: Editor, db_url: DbUrl,
                   title: Annotated[str, Query(max_length=40)] = "",
                   subtitle: Annotated[str, Query(max_length=60)] = "") -> Response:
    """A poster with the code (a plain background here; POST a background image for your own design)."""
    content, name = _qr_content(db_url, key)
    image = qr.poster(content, qr.PosterLayout(title=title or name, subtitle=subtitle))
    return Response(image, media_type="image/png", headers={"Content-Disposition": f'inline; filename="{key}.png"'})


# -- campaigns -----------------------------------------------------------------------------------------------
class CampaignIn(campaigns.CampaignSpec):
    status: Literal["draft", "active", "paused", "ended"] = "draft"


def _campaign_out(db: Any, campaign: ReferralCampaign) -> dict[str, Any]:
    return {"id": campaign.id, "no": campaign.no, "name": campaign.name, "status": campaign.status,
            "goal": campaign.goal, "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else None,
            "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None, "rules": campaign.rules,
            "risk": campaign.risk, "reward_budget": campaign.reward_budget, "rewards_issued": campaign.rewards_issued,
            "staff": campaign.staff, "tags": campaign.tags, "welcome": campaign.welcome, "flow_id": campaign.flow_id,
            "funnel": campaigns.funnel(db, campaign.id)}


@router.get("/campaigns")
def list_campaigns(user: Editor, db_url: DbUrl) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return [_campaign_out(db, c) for c in db.scalars(select(ReferralCampaign).order_by(ReferralCampaign.no.desc()))]


def _save(db_url: str, body: CampaignIn, user: User, must_exist: str | None) -> dict[str, Any]:
    with transaction(db_url) as db:
        exists = db.get(ReferralCampaign, body.id) is not None
        if must_exist is None and exists:
            raise ApiError(409, Msg("campaign '%(id)s' exists", id=body.id),
                           Msg("PUT /api/growth/campaigns/{id} to change it"), "id")
        if must_exist is not None and (body.id != must_exist or not exists):
            raise ApiError(404 if not exists else 422, Msg("campaign '%(must_exist)s' does not exist or the id changed",
                                                           must_exist=must_exist),
                           Msg("keep the id of the campaign you change"), "id")
        spec = campaigns.CampaignSpec.model_validate(body.model_dump(exclude={"status"}))
        try:
            saved = campaigns.save_campaign(db, spec, user.username, _now(), status=body.status)
        except campaigns.CampaignError as exc:
            raise ApiError(422, message_of(exc), Msg("correct the field and send again"), "reward_budget") from None
        return _campaign_out(db, saved)


@router.post("/campaigns", status_code=201)
def create_campaign(body: CampaignIn, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    return _save(db_url, body, user, None)


@router.put("/campaigns/{campaign_id}")
def update_campaign(campaign_id: str, body: CampaignIn, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    return _save(db_url, body, user, campaign_id)


@router.get("/campaigns/{campaign_id}")
def get_campaign(campaign_id: str, user: Editor, db_url: DbUrl) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        found = db.get(ReferralCampaign, campaign_id)
        if found is None:
            raise ApiError(404, Msg("campaign '%(campaign_id)s' does not exist",
                                    campaign_id=campaign_id), Msg("see GET /api/growth/campaigns"), "id")
        return {**_campaign_out(db, found),
                "leaderboard": leaderboard_for(db, user, campaigns.leaderboard(db, campaign_id))}


def leaderboard_for(db: Session, user: User, board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leaderboard with the participants' names as ``user`` may see them (the read policy)."""
    names = reading.names_for(db, reading.reader_of(db, user),
                              {str(r["customer_id"]): str(r["name"]) for r in board if r["name"]})
    return [{**r, "name": names.get(str(r["customer_id"]), "")} for r in board]


@router.get("/campaigns/{campaign_id}/leaderboard")
def leaderboard(campaign_id: str, user: Editor, db_url: DbUrl,
                limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return leaderboard_for(db, user, campaigns.leaderboard(db, campaign_id, limit))


@router.get("/campaigns/{campaign_id}/funnel")
def funnel(campaign_id: str, user: Editor, db_url: DbUrl) -> dict[str, int]:
    with session_factory(db_url)() as db:
        return campaigns.funnel(db, campaign_id)


# -- the review queue (防羊毛) --------------------------------------------------------------------------------
def invite_out(invite: ReferralInvite) -> dict[str, Any]:
    return {"id": invite.id, "campaign": invite.campaign_id, "participant": invite.participant_id,
            "invitee": invite.invitee_id, "user_id": invite.user_id, "added_at": invite.added_at.isoformat(),
            "status": invite.status, "reason": invite.reason, "risk_score": invite.risk_score,
            "risk": invite.risk, "reviewed_by": invite.reviewed_by}


@router.get("/review")
def review_queue(user: Reviewer, db_url: DbUrl, campaign: str | None = None) -> list[dict[str, Any]]:
    """Invites waiting for a decision, oldest first, with the rules that fired."""
    with session_factory(db_url)() as db:
        return [invite_out(i) for i in campaigns.review_queue(db, campaign)]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    reason: str = Field(min_length=1, max_length=500, description="why: the decision is audited")


@router.post("/review/{invite_id}")
def decide(invite_id: int, body: DecisionIn, user: Reviewer, db_url: DbUrl) -> dict[str, Any]:
    """Approve (the invite counts, or waits out the friend duration) or reject; audited."""
    try:
        with transaction(db_url) as db:
            return invite_out(campaigns.decide(db, invite_id, body.approve, user.username, body.reason, _now()))
    except campaigns.CampaignError as exc:
        status = 404 if "does not exist" in str(exc) else 409
        raise ApiError(status, message_of(exc), Msg("reload the review queue"), "invite_id") from None


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", examples=["phone"],
                      description="customer, an identity kind (phone, wecom_external_userid …), device, ip or address")
    value: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=500)


@router.get("/blocklist")
def blocklist(user: Reviewer, db_url: DbUrl) -> list[dict[str, Any]]:
    """Blocked identities, devices, IPs and addresses: personal data, so masked for roles that see customers'
    personal data masked (the read policy)."""
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(GrowthBlock).order_by(GrowthBlock.created_at.desc()).limit(1000)))
        values = reading.identities_for(db, reading.reader_of(db, user), ((None, b.kind, b.value) for b in rows))
        return [{"kind": b.kind, "value": value, "reason": b.reason, "created_by": b.created_by}
                for b, value in zip(rows, values, strict=True)]


@router.post("/blocklist", status_code=201)
def add_block(body: BlockIn, user: Reviewer, db_url: DbUrl) -> dict[str, Any]:
    with transaction(db_url) as db:
        if db.get(GrowthBlock, (body.kind, body.value)) is None:
            db.add(GrowthBlock(kind=body.kind, value=body.value, reason=body.reason, created_by=user.username))
            audit(db, user, "referral.blocklisted", f"{body.kind}:{mask_identity(body.kind, body.value)}",
                  {"reason": body.reason})
    return body.model_dump()
