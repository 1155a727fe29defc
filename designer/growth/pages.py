"""The growth pages: channel codes (list, new, one code with its QR code, figures and latest adds), referral
campaigns (list, new, one campaign with funnel, leaderboard and its review queue) and the review queue.

Thin routes over activities/growth; drawn with the page kit (:mod:`designer.pages`), text in
:mod:`designer.growth.text`. Forms post back here and redirect (a refusal comes back as ``?error=``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from activities.growth import campaigns, channels
from activities.growth.channels import ChannelError, ChannelSpec
from designer import reading
from designer.display import display_zone
from designer.errors import validation_text
from designer.growth import labels as _labels  # noqa: F401  (its status labels)
from designer.growth.api import leaderboard_for
from designer.i18n import _, translate
from designer.pages import DbUrl, PageProblem, PageRoute, clip, page_user, render, see_other
from designer.permissions import GROWTH_EDITORS, GROWTH_REVIEWERS
from engine.auth import audit
from engine.db import models
from engine.db.growth_models import ChannelAdd, GrowthChannel, ReferralCampaign, ReferralReward
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
EditorPage = Annotated[User, Depends(page_user(*GROWTH_EDITORS))]
ReviewerPage = Annotated[User, Depends(page_user(*GROWTH_REVIEWERS))]
Text = Annotated[str, Form(max_length=4000)]


def _now() -> datetime:
    return datetime.now(UTC)


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]


def _problem(exc: ValidationError) -> str:
    """The form's refusal, each problem with its field, in the reader's language."""
    return validation_text(exc, 300)[0]


def _refused(message: Msg | BaseException) -> str:
    """A refusal for ``?error=``, in the reader's language: the page it redirects to shows the text as it comes
    (the POST and that GET are the same reader's, so they speak the same language)."""
    return translate(message_of(message) if isinstance(message, BaseException) else message)


def _back(path: str, **params: str) -> RedirectResponse:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items() if v)
    return see_other(f"{path}?{query}" if query else path)


@router.get("/growth", response_class=HTMLResponse)
def growth_home(user: EditorPage) -> RedirectResponse:
    return see_other("/growth/channels")


# -- channel codes ---------------------------------------------------------------------------------------------
@router.get("/growth/channels", response_class=HTMLResponse)
def channels_page(request: Request, user: EditorPage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(GrowthChannel).where(GrowthChannel.purpose == "channel",
                                                           GrowthChannel.status != "deleted")
                               .order_by(GrowthChannel.id.desc()).limit(200)))
        figures = {c.key: channels.stats(db, c, _now()) for c in rows}
        active = channels.welcome_flow_active(db)
    return render(request, user, "growth/channels.html", rows=rows, figures=figures, welcome_flow_active=active,
                   error=clip(request.query_params.get("error", ""), 500))


@router.post("/growth/channels")
def create_channel_page(user: EditorPage, db_url: DbUrl, key: Text, name: Text, staff: Text = "",
                        tags: Text = "", welcome: Text = "", daily_cap: Text = "", remark: Text = "",
                        platform: Text = "wecom", skip_verify: Text = "") -> RedirectResponse:
    try:
        spec = ChannelSpec.model_validate({
            "key": key.strip(), "name": name.strip(), "platform": platform, "staff": _list(staff),
            "tags": _list(tags), "welcome": {"text": welcome.strip()}, "remark": remark.strip(),
            "daily_cap": int(daily_cap) if daily_cap.strip().isdigit() else None, "skip_verify": bool(skip_verify)})
        made = channels.create_channel(db_url, spec, user.username, _now())
    except ValidationError as exc:
        return _back("/growth/channels", error=_problem(exc))
    except ChannelError as exc:
        return _back("/growth/channels", error=_refused(exc))
    return _back(f"/growth/channels/{made.key}", created=made.name)


@router.get("/growth/channels/{key}", response_class=HTMLResponse)
def channel_page(request: Request, key: str, user: EditorPage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        found = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key, GrowthChannel.status != "deleted"))
        if found is None:
            raise PageProblem(404, user, _("Not found"), _("There is no channel code “%(id)s”.") % {"id": key},
                              back="/growth/channels")
        figures = channels.stats(db, found, _now())
        rows = list(db.execute(select(ChannelAdd, models.Customer.name).join(
            models.Customer, models.Customer.id == ChannelAdd.customer_id, isouter=True)
            .where(ChannelAdd.channel_id == found.id).order_by(ChannelAdd.id.desc()).limit(100)).all())
        names = reading.names_for(db, reading.reader_of(db, user), {a.customer_id: n for a, n in rows if n})
        adds = [(a, names.get(a.customer_id, "")) for a, _name in rows]
        active = channels.welcome_flow_active(db)
    return render(request, user, "growth/channel.html", channel=found, figures=figures, adds=adds,
                   welcome_flow_active=active, error=clip(request.query_params.get("error", ""), 500),
                   created=clip(request.query_params.get("created", ""), 200))


@router.post("/growth/channels/{key}/status")
def channel_status_page(key: str, user: EditorPage, db_url: DbUrl, status: Text) -> RedirectResponse:
    if status not in ("active", "disabled", "deleted"):
        return _back(f"/growth/channels/{key}", error=_refused(Msg("the status must be active, disabled or deleted")))
    try:
        channels.set_status(db_url, key, status, user.username, _now())  # type: ignore[arg-type]
    except ChannelError as exc:
        return _back(f"/growth/channels/{key}", error=_refused(exc))
    return see_other("/growth/channels" if status == "deleted" else f"/growth/channels/{key}")


# -- campaigns -------------------------------------------------------------------------------------------------
@router.get("/growth/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: EditorPage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(ReferralCampaign).order_by(ReferralCampaign.no.desc()).limit(200)))
        funnels = {c.id: campaigns.funnel(db, c.id) for c in rows}
    return render(request, user, "growth/campaigns.html", rows=rows, funnels=funnels,
                   error=clip(request.query_params.get("error", ""), 500))


def _when(value: str, field: str) -> datetime:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(Msg("%(field)s: write a time such as 2026-12-01T00:00", field=field)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=display_zone())


@router.post("/growth/campaigns")
def create_campaign_page(user: EditorPage, db_url: DbUrl, campaign_id: Text, name: Text, goal: Text,
                         starts_at: Text, ends_at: Text, staff: Text, budget: Text = "", min_duration: Text = "",
                         review_at: Text = "50", tags: Text = "", welcome: Text = "",
                         flow_id: Text = "") -> RedirectResponse:
    try:
        spec = campaigns.CampaignSpec.model_validate({
            "id": campaign_id.strip(), "name": name.strip(), "goal": goal.strip() or "3",
            "starts_at": _when(starts_at, "starts_at"), "ends_at": _when(ends_at, "ends_at"), "staff": _list(staff),
            "reward_budget": int(budget) if budget.strip().isdigit() else None, "tags": _list(tags),
            "welcome": {"text": welcome.strip()} if welcome.strip() else {},
            "rules": {"min_friend_duration": min_duration.strip() or None},
            "risk": {"review_at": review_at.strip() or "50"}, "flow_id": flow_id.strip() or None})
        with transaction(db_url) as db:
            if db.get(ReferralCampaign, spec.id) is not None:
                return _back("/growth/campaigns", error=_refused(Msg("campaign '%(id)s' exists", id=spec.id)))
            campaigns.save_campaign(db, spec, user.username, _now(), status="active")
    except ValidationError as exc:
        return _back("/growth/campaigns", error=_problem(exc))
    except (ValueError, campaigns.CampaignError) as exc:
        return _back("/growth/campaigns", error=_refused(exc))
    return see_other(f"/growth/campaigns/{spec.id}")


def _queue(db: Any, user: User, campaign_id: str | None) -> list[dict[str, Any]]:
    rows = campaigns.review_queue(db, campaign_id)
    names = reading.names_for(db, reading.reader_of(db, user), {str(i): str(n) for i, n in db.execute(
        select(models.Customer.id, models.Customer.name).where(
            models.Customer.id.in_([r.invitee_id for r in rows]))).all() if n}) if rows else {}
    return [{"invite": r, "name": names.get(r.invitee_id) or ""} for r in rows]


@router.get("/growth/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str, user: EditorPage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        found = db.get(ReferralCampaign, campaign_id)
        if found is None:
            raise PageProblem(404, user, _("Not found"),
                              _("There is no referral campaign “%(id)s”.") % {"id": campaign_id},
                              back="/growth/campaigns")
        board = leaderboard_for(db, user, campaigns.leaderboard(db, campaign_id, 50))
        funnel = campaigns.funnel(db, campaign_id)
        queue = _queue(db, user, campaign_id)
        rewards = list(db.scalars(select(ReferralReward).where(ReferralReward.campaign_id == campaign_id)
                                  .order_by(ReferralReward.id.desc()).limit(100)))
    return render(request, user, "growth/campaign.html", campaign=found, board=board, funnel=funnel, queue=queue,
                   rewards=rewards, error=clip(request.query_params.get("error", ""), 500),
                   decided=clip(request.query_params.get("decided", ""), 20))


@router.post("/growth/campaigns/{campaign_id}/status")
def campaign_status_page(campaign_id: str, user: EditorPage, db_url: DbUrl, status: Text) -> RedirectResponse:
    if status not in ("active", "paused", "ended"):
        return _back(f"/growth/campaigns/{campaign_id}",
                     error=_refused(Msg("the status must be active, paused or ended")))
    with transaction(db_url) as db:
        found = db.get(ReferralCampaign, campaign_id)
        if found is None:
            return _back("/growth/campaigns", error=_refused(Msg("campaign '%(campaign_id)s' does not exist",
                                                                  campaign_id=campaign_id)))
        before, found.status, found.updated_at = found.status, status, _now()
        audit(db, user, "referral.campaign_status", f"campaign:{campaign_id}", before={"status": before},
              after={"status": status})
    return see_other(f"/growth/campaigns/{campaign_id}")


# -- the review queue ------------------------------------------------------------------------------------------
@router.get("/growth/review", response_class=HTMLResponse)
def review_page(request: Request, user: ReviewerPage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        queue = _queue(db, user, None)
    return render(request, user, "growth/review.html", queue=queue,
                   error=clip(request.query_params.get("error", ""), 500),
                   decided=clip(request.query_params.get("decided", ""), 20))


@router.post("/growth/review/{invite_id}")
def decide_page(invite_id: int, user: ReviewerPage, db_url: DbUrl, decision: Text, reason: Text = "",
                back: Text = "") -> RedirectResponse:
    target = back if back.startswith("/growth/") else "/growth/review"
    if decision not in ("approve", "reject"):
        return _back(target, error=_refused(Msg("the decision must be approve or reject")))
    try:
        with transaction(db_url) as db:
            campaigns.decide(db, invite_id, decision == "approve", user.username, reason, _now())
    except campaigns.CampaignError as exc:
        return _back(target, error=_refused(exc))
    return _back(target, decided=str(invite_id))
