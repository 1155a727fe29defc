"""Coupon campaigns (优惠券活动) in the JSON API: create, list, look at the counts, pause / end.

``POST /api/coupon-campaigns`` creates a campaign; the ``action.issue_coupon`` node names it by id.
Face values are integer fen (``2000``) or a decimal string of yuan (``"20.00"``) — never a float.
Every route needs the marketer role (admins pass too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.coupons.campaigns import CampaignCounts, counts, value_fen, value_yuan
from activities.coupons.codes import check_prefix
from activities.coupons.issuance import CampaignNotFound, issue_coupon, lock_campaign
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import COUPON_ISSUERS
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter(prefix="/api/coupon-campaigns", tags=["coupons"])
Marketer = Annotated[User, Depends(require("marketer"))]
DbUrl = Annotated[str, Depends(get_db_url)]
#: who may issue a coupon to one customer by hand (the sidebar): the campaign's limits still hold
Issuer = Annotated[User, Depends(require(*COUPON_ISSUERS))]
MAX_COUNT = 2_147_483_647  # the columns are 32-bit integers


class CampaignIn(BaseModel):
    """A new coupon campaign."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,79}$", examples=["welcome-20"],
                    description="how flows name it (the node's 'campaign'); letters, digits, '-' and '_'")
    name: str = Field(min_length=1, max_length=200, examples=["新客立减20元"])
    value: int | str = Field(examples=["20.00", 2000],
                             description='face value: integer fen (2000) or a decimal string of yuan ("20.00")')
    total_stock: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="coupons in all; null: unlimited")
    daily_budget: int | None = Field(default=None, ge=1, le=MAX_COUNT,
                                     description="coupons per day (Asia/Shanghai calendar day); null: no daily cap")
    per_customer_limit: int = Field(default=1, ge=1, le=10_000, description="coupons one customer may get")
    valid_from: datetime | None = Field(default=None, description="issuing starts (with a timezone)")
    valid_until: datetime | None = Field(default=None, description="issuing stops and every coupon expires")
    validity_days: int | None = Field(default=None, ge=1, le=3650,
                                      description="a coupon expires this many days after issue (capped by valid_until)")
    code_prefix: str = Field(default="", max_length=12, examples=["NEW20-"],
                             description="codes start with it: A–Z, 0–9 and '-'")
    status: Literal["active", "paused"] = "active"

    @field_validator("value", mode="before")
    @classmethod
    def _money(cls, value: object) -> int:
        return value_fen(value)

    @field_validator("code_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_prefix(value.upper())

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2026-12-31T23:59:59+08:00")
        return value

    @field_validator("valid_until")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("valid_from")
        if value is not None and isinstance(start, datetime) and value <= start:
            raise ValueError("must be after valid_from")
        return value


class CountsOut(BaseModel):
    issued: int
    redeemed: int
    expired: int = Field(description="issued, not redeemed, past their expiry")
    remaining_stock: int | None = Field(description="null: unlimited")
    issued_today: int
    today: str = Field(description="the calendar day (Asia/Shanghai) issued_today counts")


class CampaignOut(BaseModel):
    id: str
    name: str
    value_fen: int
    value_yuan: str
    total_stock: int | None
    daily_budget: int | None
    per_customer_limit: int
    valid_from: datetime | None
    valid_until: datetime | None
    validity_days: int | None
    code_prefix: str
    status: str
    created_at: datetime
    counts: CountsOut

    @classmethod
    def of(cls, campaign: models.CouponCampaign, found: CampaignCounts) -> CampaignOut:
        return cls(id=campaign.id, name=campaign.name, value_fen=campaign.value_fen,
                   value_yuan=value_yuan(campaign.value_fen), total_stock=campaign.total_stock,
                   daily_budget=campaign.daily_budget, per_customer_limit=campaign.per_customer_limit,
                   valid_from=campaign.valid_from, valid_until=campaign.valid_until,
                   validity_days=campaign.validity_days, code_prefix=campaign.code_prefix, status=campaign.status,
                   created_at=campaign.created_at, counts=CountsOut(**found.__dict__))


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "paused", "ended"]


def _now() -> datetime:
    return datetime.now(UTC)


def _out(db: Session, campaign: models.CouponCampaign) -> CampaignOut:
    return CampaignOut.of(campaign, counts(db, [campaign], _now())[campaign.id])


def _exists(campaign_id: str) -> ApiError:
    return ApiError(409, Msg("coupon campaign '%(campaign_id)s' already exists", campaign_id=campaign_id),
                    Msg("choose another id, or change the existing campaign's status"), "id")


def _missing(campaign_id: str) -> ApiError:
    return ApiError(404, Msg("coupon campaign '%(campaign_id)s' does not exist", campaign_id=campaign_id),
                    Msg("GET /api/coupon-campaigns lists the campaigns"), "id")


@router.post("", status_code=201, response_model=CampaignOut)
def create_campaign(body: CampaignIn, user: Marketer, db_url: DbUrl) -> CampaignOut:
    """Create a campaign. It issues at once unless created ``paused``."""
    assert isinstance(body.value, int)  # the validator turned yuan text into fen
    try:
        with transaction(db_url) as db:
            if db.get(models.CouponCampaign, body.id) is not None:
                raise _exists(body.id)
            campaign = models.CouponCampaign(
                id=body.id, name=body.name, value_fen=body.value, total_stock=body.total_stock, issued_count=0,
                daily_budget=body.daily_budget, per_customer_limit=body.per_customer_limit,
                valid_from=body.valid_from, valid_until=body.valid_until, validity_days=body.validity_days,
                code_prefix=body.code_prefix, status=body.status, created_at=_now())
            db.add(campaign)
            auth.audit(db, user, "coupon_campaign.created", body.id, {},
                       after={"name": body.name, "value_fen": body.value, "total_stock": body.total_stock,
                              "daily_budget": body.daily_budget, "per_customer_limit": body.per_customer_limit,
                              "status": body.status})
            db.flush()
            return _out(db, campaign)
    except IntegrityError:  # created concurrently by someone else
        raise _exists(body.id) from None


@router.get("", response_model=list[CampaignOut])
def list_campaigns(user: Marketer, db_url: DbUrl,
                   status: Literal["active", "paused", "ended"] | None = None) -> list[CampaignOut]:
    """Every campaign (newest first) with its counts; ``?status=active`` filters."""
    with session_factory(db_url)() as db:
        query = select(models.CouponCampaign).order_by(models.CouponCampaign.created_at.desc(),
                                                       models.CouponCampaign.id)
        if status is not None:
            query = query.where(models.CouponCampaign.status == status)
        campaigns = list(db.scalars(query))
        found = counts(db, campaigns, _now())
        return [CampaignOut.of(c, found[c.id]) for c in campaigns]


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: str, user: Marketer, db_url: DbUrl) -> CampaignOut:
    """One campaign with its counts: issued, redeemed, expired, remaining stock, issued today."""
    with session_factory(db_url)() as db:
        campaign = db.get(models.CouponCampaign, campaign_id)
        if campaign is None:
            raise _missing(campaign_id)
        return _out(db, campaign)


@router.post("/{campaign_id}/status", response_model=CampaignOut)
def change_status(campaign_id: str, body: StatusChange, user: Marketer, db_url: DbUrl) -> CampaignOut:
    """Pause, resume or end a campaign. Ending is final; coupons already issued stay usable."""
    with transaction(db_url) as db:
        try:
            campaign = lock_campaign(db, campaign_id)
        except CampaignNotFound:
            raise _missing(campaign_id) from None
        if campaign.status == "ended" and body.status != "ended":
            raise ApiError(409, Msg("coupon campaign '%(campaign_id)s' has ended and cannot be %(status)s again",
                                    campaign_id=campaign_id, status=body.status),
                           Msg("create a new campaign to issue more coupons"), "status")
        if campaign.status != body.status:
            before = campaign.status
            campaign.status = body.status
            auth.audit(db, user, "coupon_campaign.status", campaign_id, {}, before={"status": before},
                       after={"status": body.status})
        db.flush()
        return _out(db, campaign)


class IssueIn(BaseModel):
    """One coupon for one customer, issued by a staff member (the sidebar, a console)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=40)
    request_id: str = Field(min_length=8, max_length=80, pattern=r"^[A-Za-z0-9_\-]+$",
                            description="your id for this tap: a retry with the same id issues nothing new")


@router.post("/{campaign_id}/issue")
def issue(campaign_id: str, body: IssueIn, user: Issuer, db_url: DbUrl) -> dict[str, Any]:
    """Issue a coupon of this campaign to a customer: stock, daily budget and the per-customer limit hold
    exactly as for journeys; the answer says ``issued`` (with the code) or why not. Audited."""
    with transaction(db_url) as db:
        if db.get(models.Customer, body.customer_id) is None:
            raise ApiError(422, Msg("customer '%(customer_id)s' does not exist", customer_id=body.customer_id),
                           Msg("check the id"), "customer_id")
        try:
            outcome = issue_coupon(db, campaign_id, body.customer_id, f"staff:{user.id}:{body.request_id}", _now())
        except CampaignNotFound as exc:
            raise _missing(exc.campaign_id) from None
        detail = outcome.as_detail()
        if not outcome.repeated:
            auth.audit(db, user, "coupon.issued" if outcome.issued else "coupon.refused",
                       f"coupon-campaign:{campaign_id}",
                       {**detail, "customer": body.customer_id, "code": (outcome.code or "")[-4:]})
        return {**detail, "customer_id": body.customer_id}
