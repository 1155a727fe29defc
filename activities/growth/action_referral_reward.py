"""action.referral_reward: give a participant their campaign reward, exactly once (发放裂变奖励).

The reward is any action node — ``action.issue_coupon``, ``action.loyalty_points``, a plugin's action —
set as ``reward: {"type": …, "config": {…}}``. The node first claims the participant's one reward
(unique per campaign and participant, counted against the campaign's reward budget under its lock),
then runs the reward node under the key ``referral-reward/<campaign>/<participant>`` through the same
idempotency ledger every action uses. So duplicate callbacks, two journeys racing for the same
participant, and retries after a crash all end with one reward; the issuance is audited.

Each journey gets the port that says what happened to it: ``out`` for the journey visit that holds the claim
(its retries and redeliveries included), ``already_rewarded`` for one that lost the race for the same
participant's reward, ``budget_exhausted`` for a participant that lost the race for the last reward.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.growth import campaigns
from engine.actions import ActionContext, ActionFailed, perform
from engine.db.session import transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Problem
from engine.text import Msg, message_of
from engine.validate import pydantic_message


class RewardNode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=3, description="an action node type, e.g. action.issue_coupon",
                      examples=["action.issue_coupon"])
    config: dict[str, Any] = Field(default_factory=dict, description="that node's settings")


class ReferralRewardConfig(NodeConfig):
    campaign: str = Field(min_length=1, max_length=80, description="id of the referral campaign")
    reward: RewardNode = Field(description="the action that is the reward (coupon, points, any action node)",
                               examples=[{"type": "action.issue_coupon", "config": {"campaign": "referral-30"}}])


def _reward_type(name: str) -> type[NodeType] | None:
    from engine.registry import default_registry

    found = default_registry().get(name)
    return found if found is not None and found.is_action() and found.type != ReferralReward.type else None


class ReferralReward(NodeType):
    type = "action.referral_reward"
    category = "action"
    label = {"zh-CN": "发放裂变奖励", "en": "Issue referral reward"}
    description = {"zh-CN": "参与者达成目标后发放奖励（任意动作节点：优惠券、积分、插件…），每人仅一次，受奖励库存约束",
                   "en": "Reward a participant who reached the goal (any action node: coupon, points, a plugin) — "
                         "once per participant, within the reward budget"}
    kinds = ("journey",)
    Config = ReferralRewardConfig
    ports = ("out", "already_rewarded", "not_eligible", "budget_exhausted", "failed")
    transactional = False

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        node_type = _reward_type(config.reward.type)
        if node_type is None:
            return [Problem(None, "reward.type", Msg("'%(type)s' is not an action node type",
                                                     type=config.reward.type),
                            Msg("pick an action such as action.issue_coupon or action.loyalty_points"))]
        try:
            node_type.Config.model_validate(config.reward.config)
        except ValidationError as exc:
            first = exc.errors()[0]  # pydantic's problem as a translatable sentence (a validator's Msg kept)
            said = Msg("is required") if first["type"] == "missing" else pydantic_message(first)
            return [Problem(None, "reward.config." + ".".join(str(p) for p in first["loc"]), said,
                            Msg("fill in the settings of %(type)s", type=config.reward.type))]
        return list(node_type.check(node_type.Config.model_validate(config.reward.config)))

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="not_eligible", detail={"status": "no_customer"})
        node_type = _reward_type(config.reward.type)
        if node_type is None:
            raise ActionFailed(Msg("node '%(node)s': reward type '%(type)s' is not installed", node=ctx.node_id,
                                   type=config.reward.type))
        if ctx.simulate:
            return ActionResult(detail={"status": "simulated", "reward": config.reward.type})
        url = ctx.services.database_url
        ctx.db.rollback()
        try:
            with transaction(url) as db:
                claim = campaigns.claim_reward(db, config.campaign, ctx.customer_id, config.reward.type, ctx.now,
                                               claimant=ctx.key)
        except campaigns.CampaignError as exc:
            raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None
        if claim.status in ("goal_not_reached", "not_participant"):
            return ActionResult(port="not_eligible", detail={"status": claim.status, "message": claim.message})
        if claim.status == "budget_exhausted":
            return ActionResult(port="budget_exhausted", detail={"status": claim.status, "message": claim.message})
        if claim.status == "issued":  # given through another journey's claim
            return ActionResult(port="already_rewarded", detail={"status": "already_rewarded", "key": claim.key})
        # ours (claimed now, or our own claim resumed after a crash or a redelivery of this visit), or another
        # journey's claim that has not finished: run the reward under the participant's key — the ledger gives
        # it once, and whoever runs second gets the first one's outcome
        request = replace(ctx.request, key=claim.key, node_type=node_type.type, config=dict(config.reward.config))
        try:
            result = perform(node_type, request, ctx.services)
        except ActionFailed as exc:
            with transaction(url) as db:
                campaigns.finish_reward(db, claim.key, {"error": str(exc)}, False, f"flow:{ctx.flow_id}", ctx.now,
                                        claimant=ctx.key)
            return ActionResult(port="failed", detail={"status": "failed", "message": str(exc)})
        inner_port = str(result.get("port") or "out")
        ok = inner_port == "out"
        with transaction(url) as db:
            campaigns.finish_reward(db, claim.key, {"port": inner_port, "detail": result.get("detail") or {}}, ok,
                                    f"flow:{ctx.flow_id}", ctx.now, claimant=ctx.key)
        # "out" is the claim holder's answer only: a journey that finished another's claim did not win it
        if claim.status != "granted" and ok:
            return ActionResult(port="already_rewarded", variables=dict(result.get("variables") or {}),
                                detail={"status": "already_rewarded", "key": claim.key})
        return ActionResult(port="out" if ok else "failed", variables=dict(result.get("variables") or {}),
                            detail={"status": "rewarded" if ok else "failed", "reward": config.reward.type,
                                    "key": claim.key, "reward_port": inner_port})
