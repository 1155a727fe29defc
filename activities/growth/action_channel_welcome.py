"""action.channel_welcome: the channel code's welcome message with the add's WelcomeCode, and its tags
in WeCom (渠道欢迎语).

WeCom accepts a welcome_code within 20 seconds of the add event, once. There is none when the staff
member has a welcome configured in the admin console or has already chatted with the customer; then
nothing can be sent this way, and the node says so (port ``not_sent``, reason ``no_code``) and the
channel's add is marked, so the marketer sees it on the channel page. 41051 (already sent — by us in
an earlier attempt, by another app, or because they started chatting) and 41096 (another app is
sending it) are outcomes, not failures: ``not_sent`` with that reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import select

from activities.growth.channels import ChannelError, wecom_connection
from connectors.wecom.api_errors import ApiError, WelcomeCodeUnusable
from connectors.wecom.client import attachments_for
from connectors.wecom.media import media_for
from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.db.growth_models import ChannelAdd, GrowthChannel
from engine.db.session import transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType
from engine.text import Msg, message_of

TAG_GROUP = "Tideflow 渠道"


class ChannelWelcomeConfig(NodeConfig):
    tag_in_wecom: bool = Field(default=True, description="also put the channel's tags on the customer in WeCom "
                                                          "(corp tags in the group 'Tideflow 渠道')")


def _set_status(url: str | None, add_id: int, status: str, detail: str) -> None:
    with transaction(url) as db:
        row = db.get(ChannelAdd, add_id)
        if row is not None:
            row.welcome_status, row.welcome_detail = status, detail[:500]


class ChannelWelcome(NodeType):
    type = "action.channel_welcome"
    category = "action"
    label = {"zh-CN": "渠道欢迎语", "en": "Channel welcome"}
    description = {"zh-CN": "用添加好友回调的 WelcomeCode 发送该渠道活码的欢迎语并打上渠道标签；"
                            "无 WelcomeCode（后台已配欢迎语或已聊过）等情况走 not_sent 并在渠道页显示",
                   "en": "Send the channel code's welcome with the add's WelcomeCode and tag the customer; no code "
                         "(console welcome or an earlier chat) and similar outcomes take not_sent and show on the "
                         "channel page"}
    kinds = ("journey",)
    Config = ChannelWelcomeConfig
    ports = ("out", "not_sent")
    transactional = False
    timeout = timedelta(seconds=20)
    max_attempts = 3

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        event = ctx.event
        if event.get("type") != "wecom.contact_added":
            return ActionResult(port="not_sent", detail={"status": "not_sent", "reason": "not_a_contact_add"})
        key, payload = str(event.get("id") or ""), dict(event.get("payload") or {})
        if ctx.simulate:
            return ActionResult(detail={"status": "simulated", "channel": payload.get("channel")})
        add = ctx.db.scalar(select(ChannelAdd).where(ChannelAdd.event_key == key))
        if add is None:
            return ActionResult(port="not_sent", detail={"status": "not_sent", "reason": "no_channel"})
        channel = ctx.db.get(GrowthChannel, add.channel_id)
        assert channel is not None
        welcome = dict(channel.welcome or {})
        if add.welcome_status in ("sent", "sent_unconfirmed"):
            return ActionResult(detail={"status": add.welcome_status, "channel": channel.key})
        try:
            _, client, settings = wecom_connection(ctx.db, channel.connector_id)
        except ChannelError as exc:
            raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None
        try:
            text = expressions.render(str(welcome.get("text") or ""), ctx.expression_context()) if welcome.get(
                "text") else ""
        except expressions.ExpressionError as exc:
            raise ActionFailed(Msg("welcome text of channel '%(channel)s': %(detail)s", channel=channel.key,
                                   detail=message_of(exc))) from None
        detail: dict[str, Any] = {"channel": channel.key}
        external = str((event.get("customer") or {}).get("wecom_external_userid") or "")
        tags, user_id, url = list(channel.tags or []), str(payload.get("user_id") or ""), ctx.services.database_url
        code, before = str(payload.get("welcome_code") or ""), add.welcome_status
        ctx.db.rollback()
        port, status = "out", "none"
        if add.welcome_status == "none":
            port, status = "not_sent", "none"
        elif not code:
            port, status = "not_sent", "no_code"
            _set_status(url, add.id, "no_code", "WeCom sent no WelcomeCode: the member has a welcome message set in "
                                                "the admin console, or already chatted with this customer")
        else:
            _set_status(url, add.id, "sending", "")
            occurred = event.get("occurred_at")
            issued = datetime.fromisoformat(occurred).timestamp() if occurred else None
            try:
                # images go as uploaded media ids: WeCom takes pic_url only from its own upload API
                attachments = media_for(client, getattr(settings, "image_hosts", ())).with_media_ids(
                    attachments_for(welcome.get("attachments") or []))
            except ApiError as exc:  # an image that cannot be fetched or uploaded: the text still goes out
                attachments, detail["attachments_error"] = [], str(exc)
            try:
                client.send_welcome_msg(code, text or None, attachments, issued_at=issued)
                status = "sent"
            except WelcomeCodeUnusable as exc:
                port = "not_sent"
                if exc.errcode == 41096:
                    status = "other_app"
                elif exc.errcode == 41051:
                    status = "sent_unconfirmed" if before == "sending" else "used"
                    port = "out" if status == "sent_unconfirmed" else port
                else:
                    status = "expired"
                detail["message"] = str(exc)
            except ApiError as exc:
                if exc.retryable:
                    _set_status(url, add.id, "sending", str(exc))
                    raise
                port, status, detail["message"] = "not_sent", "failed", str(exc)
            _set_status(url, add.id, status, str(detail.get("message") or ""))
        detail["status"] = status
        if config.tag_in_wecom and tags and external and user_id:
            try:
                ids = client.ensure_corp_tags(TAG_GROUP, tags)
                if ids:
                    client.mark_tag(user_id, external, add_tag=list(ids.values()))
                detail["wecom_tags"] = sorted(ids)
            except ApiError as exc:  # the welcome's outcome stands; the tag failure is shown
                detail["wecom_tags_error"] = str(exc)
        return ActionResult(port=port, detail=detail)
