"""The loyalty program's rules (积分规则与等级), validated — stored as JSON in ``loyalty_programs``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from activities.loyalty import points
from activities.loyalty import tiers as tier_rules
from engine.db.loyalty_models import LoyaltyProgram
from engine.zones import check_zone

PROGRAM_ID = "default"


class TierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z0-9_\-]{1,40}$", examples=["gold"])
    name: str = Field(min_length=1, max_length=60, examples=["金卡"])
    threshold: int = Field(ge=0, description="fen of rolling 12-month spend, or points (see tier_basis)")
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=10, description="points multiplier of the tier")
    upgrade_coupon: str | None = Field(default=None, description="coupon campaign issued once on reaching the tier")
    birthday_coupon: str | None = Field(default=None, description="coupon campaign issued on the birthday, yearly")


class PointsCampaign(BaseModel):
    """A time-boxed earning boost (e.g. 双11 points ×2)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=20)
    bonus: int = Field(default=0, ge=0, le=1_000_000, description="extra points per order")


class ProgramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: paid orders earn points (and refunds take them back) only while the program is enabled; points given
    #: by flows (action.loyalty_points, referral rewards) and redemptions work either way
    enabled: bool = False
    points_per_yuan: Decimal = Field(default=Decimal(1), ge=0, le=1000)
    expiry_rule: str = Field(default="end_of_next_year", description="never, end_of_next_year, days:N or months:N")
    timezone: str = "Asia/Shanghai"
    tier_basis: Literal["spend_12m", "points_12m"] = "spend_12m"
    tiers: list[TierSpec] = Field(default_factory=lambda: [
        TierSpec(key="member", name="普通会员", threshold=0),
        TierSpec(key="silver", name="银卡", threshold=100_000, multiplier=Decimal("1.2")),
        TierSpec(key="gold", name="金卡", threshold=500_000, multiplier=Decimal("1.5"))])
    campaigns: list[PointsCampaign] = Field(default_factory=list)
    #: points for actions (sign-up, review, referral …) given by action.loyalty_points with ``action``
    actions: dict[str, int] = Field(default_factory=lambda: {"signup": 100, "review": 20, "referral": 50})
    expiring_notice_days: int = Field(default=30, ge=1, le=365)
    keep_tier_days: int = Field(default=365, ge=0, le=3650)

    @field_validator("expiry_rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        return points.check_rule(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_zone(value)

    @model_validator(mode="after")
    def _tiers(self) -> ProgramConfig:
        tier_rules.check_tiers(self.tier_list())
        return self

    def tier_list(self) -> list[tier_rules.Tier]:
        return [tier_rules.Tier(t.key, t.name, t.threshold, t.multiplier, t.upgrade_coupon, t.birthday_coupon)
                for t in self.tiers]

    def boost(self, at: datetime) -> tuple[Decimal, int]:
        multiplier, bonus = Decimal(1), 0
        for c in self.campaigns:
            if c.starts_at <= at < c.ends_at:
                multiplier *= c.multiplier
                bonus += c.bonus
        return multiplier, bonus


def load(db: Session) -> ProgramConfig:
    row = db.get(LoyaltyProgram, PROGRAM_ID)
    return ProgramConfig.model_validate(row.config) if row is not None else ProgramConfig()


def save(db: Session, config: ProgramConfig, actor: str) -> None:
    from engine.auth import audit
    from engine.db.models import utcnow

    row = db.get(LoyaltyProgram, PROGRAM_ID)
    before: dict[str, Any] = dict(row.config) if row is not None else {}
    data = config.model_dump(mode="json")
    if row is None:
        db.add(LoyaltyProgram(id=PROGRAM_ID, config=data, updated_by=actor, updated_at=utcnow()))
    else:
        row.config, row.updated_by, row.updated_at = data, actor, utcnow()
    audit(db, actor, "loyalty.program_saved", f"loyalty:{PROGRAM_ID}", before=before, after=data)
