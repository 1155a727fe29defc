"""action.loyalty_upkeep: the scheduled chores of the points program (积分与等级例行任务).

Expire lots past their date (first in, first out: each lot expires on its own), send
``loyalty.points_expiring`` for points lapsing within the program's notice window, review tiers
(downgrades happen only here, never within ``keep_tier_days`` of the last change) and give tier
birthday gifts. Shipped as the system flow ``loyalty-upkeep`` (daily at 02:00): change it on the canvas.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from activities.loyalty import ledger
from activities.loyalty.program import load
from engine.actions import ActionContext
from engine.nodes.base import ActionResult, NodeConfig, NodeType


class LoyaltyUpkeepConfig(NodeConfig):
    expire: bool = Field(default=True, description="book the expiry of lapsed lots")
    notify_expiring: bool = Field(default=True, description="send loyalty.points_expiring events")
    review_tiers: bool = Field(default=True, description="evaluate tiers, downgrades included")
    birthday_gifts: bool = Field(default=True, description="issue tiers' birthday coupons")


class LoyaltyUpkeep(NodeType):
    type = "action.loyalty_upkeep"
    category = "action"
    label = {"zh-CN": "积分与等级例行任务", "en": "Loyalty upkeep"}
    description = {"zh-CN": "过期积分、积分即将过期提醒、会员等级复核（降级仅在此进行）、生日礼",
                   "en": "Expire points, announce expiring points, review tiers (downgrades only here), birthday gifts"}
    kinds = ("journey",)
    Config = LoyaltyUpkeepConfig
    timeout = timedelta(minutes=10)

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        program = load(ctx.db)
        detail: dict[str, Any] = {}
        if config.expire:
            detail["lots_expired"] = ledger.expire_due(ctx.db, ctx.now)
        if config.notify_expiring:
            detail["members_notified"] = ledger.notify_expiring(ctx.db, ctx.now, program.expiring_notice_days)
        if config.review_tiers:
            detail["tiers"] = ledger.review_tiers(ctx.db, ctx.now, program)
        if config.birthday_gifts:
            detail["birthday_gifts"] = ledger.birthday_gifts(ctx.db, ctx.now, program)
        return ActionResult(detail=detail)
