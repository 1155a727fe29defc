"""action.issue_coupon: issue a coupon from a campaign once per journey node and visit (发放优惠券)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from activities.coupons.codes import generate_code
from activities.coupons.issuance import CampaignNotFound, issue_coupon
from engine.actions import ActionContext, ActionFailed
from engine.nodes.base import ActionResult, NodeConfig, NodeType
from engine.text import Msg


class IssueCouponConfig(NodeConfig):
    campaign: str = Field(min_length=1, max_length=80, examples=["welcome-20"],
                          description="id of the coupon campaign (优惠券活动) to issue from")


class IssueCoupon(NodeType):
    type = "action.issue_coupon"
    category = "action"
    label = {"zh-CN": "发放优惠券", "en": "Issue coupon"}
    description = {"zh-CN": "从优惠券活动发券（受库存、每日预算、每人限领约束）；无券时走“out_of_stock”",
                   "en": "Issue a coupon from a campaign (stock, daily budget, per-customer limit); "
                         "no coupon left takes out_of_stock"}
    kinds = ("journey",)
    Config = IssueCouponConfig
    ports = ("out", "out_of_stock")

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            raise ActionFailed(Msg("node '%(node)s': a coupon is issued to a customer, and this journey has none",
                                   node=ctx.node_id))
        try:
            outcome = issue_coupon(ctx.db, config.campaign, ctx.customer_id, ctx.key, ctx.now)
        except CampaignNotFound:
            if ctx.simulate:
                # previews run on a throw-away database without your campaigns: show a stand-in coupon
                code = "PREVIEW-" + generate_code()
                return ActionResult(variables={"coupon_code": code, "coupon_expires_at": None, "coupon_value_fen": 0},
                                    detail={"status": "simulated", "campaign": config.campaign, "code": code})
            raise ActionFailed(Msg(
                "node '%(node)s': coupon campaign '%(campaign)s' does not exist; create it "
                "(POST /api/coupon-campaigns) or pick an existing campaign in the node's settings",
                node=ctx.node_id, campaign=config.campaign)) from None
        if not outcome.issued:
            return ActionResult(port="out_of_stock", detail=outcome.as_detail())
        return ActionResult(
            variables={"coupon_code": outcome.code,
                       "coupon_expires_at": outcome.expires_at.isoformat() if outcome.expires_at else None,
                       "coupon_value_fen": outcome.value_fen},
            detail=outcome.as_detail())
