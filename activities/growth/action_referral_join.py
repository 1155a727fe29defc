"""action.referral_join: make the customer a participant of a campaign with a personal code (参与裂变).

The personal code is a WeCom contact way whose ``state`` names the campaign and the participant in
at most 30 characters (``tfr<campaign>.<participant>``, activities/growth/states.py); the variables
``referral_qr_url`` (WeCom's QR image) and ``referral_poster`` (the poster page) let the next node
send it — e.g. ``action.send_message`` with the poster as an attachment.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select

from activities.growth import campaigns
from activities.growth.channels import ChannelError, ChannelSpec, Welcome, create_channel
from engine.actions import ActionContext, ActionFailed
from engine.db.growth_models import GrowthChannel, ReferralParticipant
from engine.db.session import transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType
from engine.text import Msg, message_of


class CodeNotReady(RuntimeError):
    """Another journey of the same participant is making the personal code right now: retried."""


class ReferralJoinConfig(NodeConfig):
    campaign: str = Field(min_length=1, max_length=80, description="id of the referral campaign")


def participant_key(campaign_no: int, participant_id: int) -> str:
    return f"ref-{campaign_no}-{participant_id}"


class ReferralJoin(NodeType):
    type = "action.referral_join"
    category = "action"
    label = {"zh-CN": "参与裂变活动", "en": "Join referral campaign"}
    description = {"zh-CN": "让客户参与裂变活动并生成专属活码与海报（变量 referral_qr_url、referral_poster）",
                   "en": "Make the customer a campaign participant with a personal code and poster "
                         "(variables referral_qr_url, referral_poster)"}
    kinds = ("journey",)
    Config = ReferralJoinConfig
    ports = ("out", "not_joined")
    transactional = False

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="not_joined", detail={"status": "no_customer"})
        if ctx.simulate:
            return ActionResult(variables={"referral_qr_url": "https://example.invalid/preview-qr.png",
                                           "referral_poster": "/growth/posters/preview.png"},
                                detail={"status": "simulated"})
        url = ctx.services.database_url
        ctx.db.rollback()
        try:
            with transaction(url) as db:
                campaign = campaigns.get_campaign(db, config.campaign)
                participant, _ = campaigns.join(db, campaign, ctx.customer_id, ctx.now)
                pid, no, channel_id = participant.id, campaign.no, participant.channel_id
                spec = ChannelSpec(key=participant_key(campaign.no, participant.id),
                                   name=f"{campaign.name} · {participant.customer_id}"[:200],
                                   connector_id=campaign.connector_id, staff=list(campaign.staff or []),
                                   tags=list(campaign.tags or []), welcome=Welcome(**(campaign.welcome or {})),
                                   remark=f"裂变{campaign.no}-{participant.id}"[:30])
                state = campaigns.participant_state(campaign, participant)
        except campaigns.CampaignError as exc:
            return ActionResult(port="not_joined", detail={"status": "not_joined", "message": str(exc)})
        if channel_id is None:
            try:
                channel = create_channel(url, spec, f"flow:{ctx.flow_id}", ctx.now, purpose="referral",
                                         campaign_id=config.campaign, state=state)
                channel_id = channel.id
            except ChannelError as exc:
                if exc.status != 409 or "exists" not in str(exc):
                    raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id,
                                                     detail=message_of(exc))) from None
            with transaction(url) as db:
                found = db.scalar(select(GrowthChannel).where(GrowthChannel.key == spec.key))
                row = db.get(ReferralParticipant, pid)
                if found is not None and row is not None:
                    row.channel_id = found.id
                    channel_id = found.id
        with transaction(url) as db:
            channel_row = db.get(GrowthChannel, channel_id) if channel_id else None
            qr = channel_row.qr_url if channel_row else None
            if channel_row is None or channel_row.status != "active" or not qr:
                # a racing journey reserved the code and is still waiting for WeCom: the activity retries
                raise CodeNotReady(Msg("the personal code of participant %(participant)s is being made; retrying",
                                         participant=pid))
        return ActionResult(variables={"referral_qr_url": qr, "referral_poster": f"/growth/posters/{spec.key}.png",
                                       "referral_participant": pid},
                            detail={"status": "joined", "participant": pid, "campaign_no": no, "state": state})
