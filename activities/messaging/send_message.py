"""action.send_message: render a template and send it through a channel, recorded once."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from activities.messaging import channels
from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.db import models
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Template

Channel = Literal["dry-run", "wecom", "wechat_oa", "sms", "email", "webhook"]


class SendMessageConfig(NodeConfig):
    channel: Channel = Field(default="dry-run", description="where to send")
    template: Template = Field(min_length=1, description="message text; {{ customer.name }} etc.",
                               examples=["你好 {{ customer.name }}"])
    category: Literal["promotional", "transactional"] = Field(
        default="promotional", description="transactional messages are exempt from frequency caps")
    fallback_channel: Channel | None = Field(default=None, description="used when the channel cannot send")


class SendMessage(NodeType):
    type = "action.send_message"
    category = "action"
    label = {"zh-CN": "发送消息", "en": "Send message"}
    description = {"zh-CN": "通过渠道发送消息（受同意、频控、免打扰约束）",
                   "en": "Send through a channel, subject to consent, caps and quiet hours"}
    Config = SendMessageConfig
    ports = ("out", "skipped")

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="skipped", detail={"status": "skipped: no customer"})
        try:
            content = expressions.render(config.template, ctx.expression_context())
        except expressions.ExpressionError as exc:
            raise ActionFailed(f"template of node '{ctx.node_id}': {exc}") from None
        channel = "dry-run" if ctx.simulate else config.channel
        deliver = channels.delivery(channel)
        if deliver is None and config.fallback_channel and not ctx.simulate:
            channel = config.fallback_channel
            deliver = channels.delivery(channel)
        if deliver is None:
            status = "skipped: channel not configured"
            provider_id = None
        else:
            provider_id = deliver(ctx.customer, content, ctx.key, config.model_dump())
            status = "sent"
        ctx.db.add(models.Message(
            idempotency_key=ctx.key, customer_id=ctx.customer_id, channel=channel, content=content, status=status,
            flow_id=ctx.flow_id, node_id=ctx.node_id, workflow_id=ctx.workflow_id,
        ))
        port = "out" if status == "sent" else "skipped"
        detail = {"status": status, "channel": channel, "provider_id": provider_id}
        if ctx.simulate:  # the preview timeline shows the text; real journeys keep it out of workflow history
            detail["content"] = content
        return ActionResult(port=port, detail=detail)
