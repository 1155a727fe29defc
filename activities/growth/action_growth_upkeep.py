"""action.growth_upkeep: the periodic chores of channel codes and referral campaigns (渠道与裂变例行维护).

* pending invites whose minimum friend duration has passed (friend still there) become valid, and
  their inviters' progress events go out;
* channel codes with schedules, daily caps or rotation get the staff who should answer now
  (``update_contact_way`` only when the list changes).

Shipped as the system flow ``growth-upkeep`` (every 5 minutes): change its schedule on the canvas.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from activities.growth import campaigns
from activities.growth.channels import ChannelError, sync_staff
from engine.actions import ActionContext
from engine.db.growth_models import GrowthChannel
from engine.db.session import session_factory, transaction
from engine.nodes.base import ActionResult, EmptyConfig, NodeType


class GrowthUpkeep(NodeType):
    type = "action.growth_upkeep"
    category = "action"
    label = {"zh-CN": "渠道与裂变例行维护", "en": "Growth upkeep"}
    description = {"zh-CN": "核验到期的裂变邀请（好友时长已满）并按排班/日上限/轮流更新渠道活码的接待员工",
                   "en": "Count pending invites that reached the minimum friend duration and apply staff "
                         "schedules, daily caps and rotation to channel codes"}
    kinds = ("journey",)
    Config = EmptyConfig
    transactional = False

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        url = ctx.services.database_url
        ctx.db.rollback()
        with transaction(url) as db:
            counted = campaigns.qualify_due(db, ctx.now)
        with session_factory(url)() as db:
            keys = [c.key for c in db.scalars(select(GrowthChannel).where(
                GrowthChannel.status == "active", GrowthChannel.platform == "wecom",
                GrowthChannel.config_id.is_not(None)))
                if c.mode == "rotate" or c.daily_cap is not None or c.schedule]
        changed, errors = [], []
        for key in keys:
            try:
                if sync_staff(url, key, ctx.now) is not None:
                    changed.append(key)
            except ChannelError as exc:
                errors.append(f"{key}: {exc}")
        return ActionResult(detail={"invites_counted": counted, "channels_updated": changed, "errors": errors[:20]})
