"""action.send_message: render a template and send it through a channel, past the policy gate, once."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from activities.messaging import channels
from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.db import models
from engine.db.session import transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Template
from engine.pii import mask_text
from engine.policies import Decision, FrequencyCap, gate
from engine.settings import get_settings

Channel = Literal["dry-run", "wecom", "wechat_oa", "sms", "email", "webhook"]


class SendMessageConfig(NodeConfig):
    channel: Channel = Field(default="dry-run", description="where to send")
    template: Template = Field(min_length=1, description="message text; {{ customer.name }} etc.",
                               examples=["你好 {{ customer.name }}"])
    category: Literal["promotional", "transactional"] = Field(
        default="promotional", description="transactional messages are exempt from frequency caps and quiet hours")
    fallback_channel: Channel | None = Field(default=None, description="used when the channel cannot send")
    attachments: list[str] = Field(default_factory=list, max_length=9,
                                   description="URLs of images/files, for channels that carry attachments")


def _cap() -> FrequencyCap | None:
    text = get_settings().frequency_cap
    return FrequencyCap.parse(text) if text else None


class SendMessage(NodeType):
    type = "action.send_message"
    category = "action"
    label = {"zh-CN": "发送消息", "en": "Send message"}
    description = {"zh-CN": "通过渠道发送消息（受同意、频控、免打扰约束）",
                   "en": "Send through a channel, subject to consent, caps and quiet hours"}
    Config = SendMessageConfig
    ports = ("out", "skipped")

    #: delivery may be an HTTP call to a platform: no write lock is held while it runs. The message
    #: row is reserved (status "sending") in one transaction with the policy decision, delivered with
    #: the idempotency key, then marked sent; a retry after a crash re-delivers with the same key.
    transactional = False

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="skipped", detail={"status": "skipped: no customer"})
        try:
            content = expressions.render(config.template, ctx.expression_context())
        except expressions.ExpressionError as exc:
            raise ActionFailed(f"template of node '{ctx.node_id}': {exc}") from None
        url = ctx.services.database_url
        ctx.db.rollback()  # done reading (the customer): give the connection back before the write transactions
        candidates = ["dry-run"] if ctx.simulate else [config.channel, *(
            [config.fallback_channel] if config.fallback_channel else [])]
        detail: dict[str, Any] = {}
        if ctx.simulate:  # the preview timeline shows the text; real journeys keep it out of workflow history
            detail["content"] = content

        def row(status: str, channel: str, key: str) -> models.Message:
            return models.Message(
                idempotency_key=key, customer_id=ctx.customer_id, channel=channel, content=mask_text(content),
                status=status, category=config.category, flow_id=ctx.flow_id, node_id=ctx.node_id,
                workflow_id=ctx.workflow_id, created_at=ctx.now)

        with transaction(url) as db:
            reserved = db.query(models.Message).filter_by(idempotency_key=ctx.key).one_or_none()
            if reserved is not None and reserved.status != "sending":
                return _result(reserved.status, reserved.channel, detail)
            if reserved is None:
                decision, channel = Decision("skipped: channel not configured"), candidates[0]
                for candidate in candidates:
                    if channels.delivery(candidate, url) is None:
                        continue
                    channel = candidate
                    decision = gate(db, ctx.customer_id, candidate, config.category, ctx.request.settings,
                                    ctx.now, _cap())
                    if decision.outcome != "skipped: no consent":
                        break
                if decision.until is not None:
                    key = f"{ctx.key}#deferred"
                    if db.query(models.Message.id).filter_by(idempotency_key=key).first() is None:
                        db.add(row(decision.outcome, channel, key))
                    return ActionResult(port="out", detail={**detail, "status": decision.outcome, "channel": channel},
                                        defer_until=decision.until.isoformat())
                if not decision.allowed:
                    db.add(row(decision.outcome, channel, ctx.key))
                    return _result(decision.outcome, channel, detail)
                db.add(row("sending", channel, ctx.key))
            else:
                channel = reserved.channel
        deliver = channels.delivery(channel, url)
        if deliver is None:  # unconfigured between reservation and delivery
            raise RuntimeError(f"channel '{channel}' is no longer configured")
        options = {**config.model_dump(), "channel": channel, "event": ctx.event}
        try:
            detail["provider_id"] = deliver(ctx.customer, content, ctx.key, options)
        except Exception as exc:
            if getattr(exc, "retryable", True):
                raise  # busy, rate-limited, network: the activity retries with the same key
            # the platform refused for good (connector errors say so with retryable = False)
            with transaction(url) as db:
                db.query(models.Message).filter_by(idempotency_key=ctx.key).update({"status": "failed: rejected"})
            return _result("failed: rejected", channel, {**detail, "error": mask_text(str(exc))[:500]})
        with transaction(url) as db:
            db.query(models.Message).filter_by(idempotency_key=ctx.key).update({"status": "sent"})
        return _result("sent", channel, detail)


def _result(status: str, channel: str, detail: dict[str, Any]) -> ActionResult:
    return ActionResult(port="out" if status == "sent" else "skipped",
                        detail={**detail, "status": status, "channel": channel})
