"""action.loyalty_points: give points for an action — sign-up, a review, a referral (积分奖励)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from activities.loyalty import ledger
from activities.loyalty.program import load
from engine.actions import ActionContext, ActionFailed
from engine.nodes.base import ActionResult, NodeConfig, NodeType
from engine.text import Msg


class LoyaltyPointsConfig(NodeConfig):
    action: str | None = Field(default=None, max_length=40, examples=["signup"],
                               description="an action of the program's points table (signup, review, referral …)")
    points: int | None = Field(default=None, ge=1, le=10_000_000, description="or a fixed number of points")
    reason: str = Field(default="", max_length=200, description="shown in the member's ledger")

    @model_validator(mode="after")
    def _one(self) -> LoyaltyPointsConfig:
        if (self.action is None) == (self.points is None):
            raise ValueError(Msg("set exactly one of 'action' (from the program's table) or 'points'"))
        return self


class LoyaltyPoints(NodeType):
    type = "action.loyalty_points"
    category = "action"
    label = {"zh-CN": "赠送积分", "en": "Give points"}
    description = {"zh-CN": "按积分规则（注册、评价、推荐…）或固定数量给客户加积分，同一节点同一次只加一次",
                   "en": "Give points by the program's action table (sign-up, review, referral …) or a fixed number, "
                         "once per node visit"}
    kinds = ("journey",)
    Config = LoyaltyPointsConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            raise ActionFailed(Msg("node '%(node)s': points go to a customer, and this journey has none",
                                   node=ctx.node_id))
        program = load(ctx.db)
        pts = config.points
        if config.action is not None:
            if config.action not in program.actions:
                if not program.actions:
                    raise ActionFailed(Msg("node '%(node)s': the points table has no action '%(action)s'; it has "
                                           "none", node=ctx.node_id, action=config.action))
                raise ActionFailed(Msg("node '%(node)s': the points table has no action '%(action)s'; it has "
                                       "%(actions)s", node=ctx.node_id, action=config.action,
                                       actions=", ".join(sorted(program.actions))))
            pts = program.actions[config.action]
        booked = ledger.earn(ctx.db, ctx.customer_id, int(pts), f"action:{ctx.key}", ctx.now,
                             reason=config.reason or config.action or "action", source_ref=f"flow:{ctx.flow_id}",
                             program=program, notify=not ctx.simulate)
        return ActionResult(variables={"points_given": booked.entry.points,
                                       "points_balance": booked.entry.balance_after},
                            detail={"points": booked.entry.points, "repeated": booked.repeated})
