"""action.send_message: render a template and send it through a channel, past the policy gate, once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from activities.messaging import channels
from engine import expressions
from engine.actions import ActionContext, ActionFailed, BulkActionContext
from engine.db import models
from engine.db.session import transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Template
from engine.pii import mask_text
from engine.policies import Decision, current_policy, gate, gate_many
from engine.runtime import ActionRequest
from engine.text import Msg, message_of

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
    #: a send is short and idempotent by its key (the message row, the platform's dedupe): a local activity
    local = True
    #: the reserving transaction finds an earlier attempt's message row under the key: no ledger read before it
    finds_own_outcome = True

    @classmethod
    def in_one_transaction(cls, config: Any, simulate: bool) -> bool:
        """A send that does no I/O (dry-run, and every preview) is one transaction: policy gate, message row
        as sent, ledger row and — when the journey ends here — its last checkpoint."""
        candidates = ["dry-run"] if simulate else [config.channel, *([config.fallback_channel]
                                                                    if config.fallback_channel else [])]
        return all(c in channels.INSTANT for c in candidates)

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="skipped", detail={"status": "skipped: no customer"})
        try:
            content = expressions.render(config.template, ctx.expression_context())
        except expressions.ExpressionError as exc:
            raise ActionFailed(_template_failed(ctx.node_id, exc)) from None
        url = ctx.services.database_url
        candidates = ["dry-run"] if ctx.simulate else [config.channel, *(
            [config.fallback_channel] if config.fallback_channel else [])]
        # a connector's delivery needs the identities: read in this session, open anyway, not in one of its own
        identities = channels.identities_of(ctx.db, ctx.customer.get("id")) if any(
            channels.through_connector(c) for c in candidates) else None
        if not ctx.in_ledger_transaction:
            ctx.db.rollback()  # done reading (the customer): give the connection back before the write transactions
        detail: dict[str, Any] = {}
        if ctx.simulate:  # the preview timeline shows the text; real journeys keep it out of workflow history
            detail["content"] = content

        def row(status: str, channel: str, key: str) -> models.Message:
            return models.Message(
                idempotency_key=key, customer_id=ctx.customer_id, channel=channel, content=mask_text(content),
                status=status, category=config.category, flow_id=ctx.flow_id, node_id=ctx.node_id,
                workflow_id=ctx.workflow_id, created_at=ctx.now)

        with _reserving(ctx) as db:
            reserved = db.query(models.Message).filter_by(idempotency_key=ctx.key).one_or_none()
            if reserved is not None and reserved.status != "sending":
                return _result(reserved.status, reserved.channel, detail)
            if reserved is None:
                decision, channel = Decision("skipped: channel not configured"), candidates[0]
                policy = current_policy(db)  # the workspace's cap and default quiet hours (settings page)
                for candidate in candidates:
                    if channels.delivery(candidate, url) is None:
                        continue
                    channel = candidate
                    decision = gate(db, ctx.customer_id, candidate, config.category,
                                    policy.flow_settings(ctx.request.settings), ctx.now, policy.cap)
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
                if ctx.in_ledger_transaction and channel in channels.INSTANT:
                    # nothing leaves the process: delivered and recorded as sent in this one transaction
                    deliver_now = channels.delivery(channel, url)
                    assert deliver_now is not None
                    detail["provider_id"] = deliver_now(ctx.customer, content, ctx.key,
                                                        {**config.model_dump(), "channel": channel, "event": ctx.event})
                    db.add(row("sent", channel, ctx.key))
                    return _result("sent", channel, detail)
                db.add(row("sending", channel, ctx.key))
            else:
                channel = reserved.channel
        deliver = channels.delivery(channel, url)
        if deliver is None:  # unconfigured between reservation and delivery
            raise RuntimeError(Msg("channel '%(channel)s' is no longer configured", channel=channel))
        options = {**config.model_dump(), "channel": channel, "event": ctx.event}
        if identities is not None:
            options[channels.IDENTITIES] = identities
        try:
            detail["provider_id"] = deliver(ctx.customer, content, ctx.key, options)
        except Exception as exc:
            if getattr(exc, "retryable", True):
                raise  # busy, rate-limited, network: the activity retries with the same key
            # the platform refused for good (connector errors say so with retryable = False)
            ctx.record_with(_mark(ctx.key, "failed: rejected"))
            return _result("failed: rejected", channel, {**detail, "error": mask_text(str(exc))[:500]})
        # marked sent in the transaction that records the action (with the ledger row): a crash before it
        # leaves the row "sending", delivered again with the same key
        ctx.record_with(_mark(ctx.key, "sent"))
        return _result("sent", channel, detail)


    @classmethod
    def run_many(cls, ctx: BulkActionContext, config: Any) -> list[ActionResult | Exception]:
        """The same send for a page of customers (a broadcast), with the same guarantees as :meth:`run`.

        One write transaction reserves the page: the policy gate for all of them at once
        (:func:`engine.policies.gate_many` — customer rows locked in id order on PostgreSQL, one
        grouped count for the cap; SQLite's ``BEGIN IMMEDIATE`` serialises it with every other
        sender), the rows already reserved under these keys (a retried page), and the new message
        rows inserted in bulk. Then each reserved message is delivered with its idempotency key —
        in line for dry-run, on a few threads for outside platforms — and one more transaction marks
        them sent. A crash in between leaves rows "sending", delivered again with the same key. A
        channel that does no I/O (``dry-run``) is delivered inside the reserving transaction and its
        rows are written as sent at once."""
        url = ctx.database_url
        now = ctx.now
        results: dict[str, ActionResult | Exception] = {}
        contents: dict[str, str] = {}
        live: list[ActionRequest] = []
        for request in ctx.requests:
            if request.customer_id is None:
                results[request.key] = ActionResult(port="skipped", detail={"status": "skipped: no customer"})
                continue
            try:
                contents[request.key] = expressions.render(config.template, ctx.expression_context(request))
            except expressions.ExpressionError as exc:
                results[request.key] = ActionFailed(_template_failed(request.node_id, exc))
                continue
            live.append(request)
        candidates = [config.channel, *([config.fallback_channel] if config.fallback_channel else [])]
        configured = [c for c in candidates if channels.delivery(c, url) is not None]
        settings = ctx.requests[0].settings if ctx.requests else {}
        options = config.model_dump()
        to_deliver: list[tuple[ActionRequest, str]] = []

        def row(request: ActionRequest, status: str, channel: str, key: str) -> dict[str, Any]:
            return {"idempotency_key": key, "customer_id": request.customer_id, "channel": channel,
                    "content": mask_text(contents[request.key]), "status": status, "category": config.category,
                    "flow_id": request.flow_id, "node_id": request.node_id, "workflow_id": request.workflow_id,
                    "direction": "out", "created_at": now}

        if live:
            with transaction(url) as db:
                ids = [str(r.customer_id) for r in live]
                # the gate first: on PostgreSQL it locks the page's customers, so a racing attempt of the
                # same page waits here and then sees every row this one reserved
                decided: dict[str, tuple[Decision, str]] = {
                    cid: (Decision("skipped: channel not configured"), candidates[0]) for cid in ids}
                open_ids = ids
                policy = current_policy(db)
                for candidate in configured:
                    if not open_ids:
                        break
                    verdicts = gate_many(db, open_ids, candidate, config.category, policy.flow_settings(settings),
                                         now, policy.cap)
                    for cid, verdict in verdicts.items():
                        decided[cid] = (verdict, candidate)
                    open_ids = [cid for cid in open_ids if verdicts[cid].outcome == "skipped: no consent"]
                reserved = _messages(db, [r.key for r in live])
                deferred = [f"{r.key}#deferred" for r in live if decided[str(r.customer_id)][0].until is not None]
                reserved.update(_messages(db, deferred))
                rows: list[dict[str, Any]] = []
                for request in live:
                    found = reserved.get(request.key)
                    if found is not None:
                        status, channel = found
                        if status == "sending":
                            to_deliver.append((request, channel))
                        else:
                            results[request.key] = _result(status, channel, {})
                        continue
                    decision, channel = decided[str(request.customer_id)]
                    if decision.until is not None:
                        if f"{request.key}#deferred" not in reserved:
                            rows.append(row(request, decision.outcome, channel, f"{request.key}#deferred"))
                        results[request.key] = ActionResult(
                            port="out", detail={"status": decision.outcome, "channel": channel},
                            defer_until=decision.until.isoformat())
                    elif not decision.allowed:
                        rows.append(row(request, decision.outcome, channel, request.key))
                        results[request.key] = _result(decision.outcome, channel, {})
                    elif channel in channels.INSTANT and (instant := channels.delivery(channel, url)) is not None:
                        # nothing leaves the process: delivered here and recorded as sent in this transaction
                        provider_id = instant(ctx.customer(request), contents[request.key], request.key,
                                              {**options, "event": request.event or {}, "channel": channel})
                        rows.append(row(request, "sent", channel, request.key))
                        results[request.key] = _result("sent", channel, {"provider_id": provider_id})
                    else:
                        rows.append(row(request, "sending", channel, request.key))
                        to_deliver.append((request, channel))
                if rows:
                    table = models.Message.__table__
                    assert isinstance(table, Table)
                    db.execute(insert(table), rows)  # Core: no ORM bookkeeping, no ids fetched back
        sent, rejected = _deliver_all(ctx, config, to_deliver, contents, results)
        if sent or rejected:
            with transaction(url) as db:
                for status, keys in (("sent", sent), ("failed: rejected", rejected)):
                    for start in range(0, len(keys), 500):
                        db.execute(update(models.Message).where(
                            models.Message.idempotency_key.in_(keys[start:start + 500])).values(status=status))
        return [results[r.key] for r in ctx.requests]


@contextmanager
def _reserving(ctx: ActionContext) -> Iterator[Session]:
    """The reserving transaction: the ledger's own when the send runs inside it, else one of its own."""
    if ctx.in_ledger_transaction:
        yield ctx.db
        return
    with transaction(ctx.services.database_url) as db:
        yield db


def _mark(key: str, status: str) -> Callable[[Session], None]:
    def write(db: Session) -> None:
        db.execute(update(models.Message).where(models.Message.idempotency_key == key).values(status=status))

    return write


#: outside platforms are called on this many threads at once by a bulk send (dry-run is called in line)
DELIVERY_THREADS = 8


def _messages(db: Session, keys: list[str]) -> dict[str, tuple[str, str]]:
    """Message rows already recorded under these keys: key → (status, channel)."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(keys), 500):
        for key, status, channel in db.execute(
                select(models.Message.idempotency_key, models.Message.status, models.Message.channel)
                .where(models.Message.idempotency_key.in_(keys[start:start + 500]))):
            found[key] = (status, channel)
    return found


def _deliver_all(ctx: BulkActionContext, config: Any, items: list[tuple[ActionRequest, str]],
                 contents: dict[str, str], results: dict[str, ActionResult | Exception]
                 ) -> tuple[list[str], list[str]]:
    """Deliver reserved messages, each with its idempotency key; fills ``results``; returns the keys
    delivered and the keys the platform refused for good."""
    url = ctx.database_url
    sent: list[str] = []
    rejected: list[str] = []
    deliverers: dict[str, channels.Deliver | None] = {}

    def one(request: ActionRequest, channel: str) -> tuple[str, str | Exception]:
        deliver = deliverers[channel]
        if deliver is None:  # unconfigured between reservation and delivery
            return "error", RuntimeError(f"channel '{channel}' is no longer configured")
        options = {**config.model_dump(), "channel": channel, "event": request.event or {}}
        try:
            return "sent", deliver(ctx.customer(request), contents[request.key], request.key, options)
        except Exception as exc:
            return ("error" if getattr(exc, "retryable", True) else "rejected"), exc

    for _, channel in items:
        if channel not in deliverers:
            deliverers[channel] = channels.delivery(channel, url)
    if items:  # every recipient's view, loaded at once before any thread starts
        ctx.customer(items[0][0])
    inline = [item for item in items if item[1] == "dry-run"]
    remote = [item for item in items if item[1] != "dry-run"]
    outcomes = [one(*item) for item in inline]
    if remote:
        with ThreadPoolExecutor(max_workers=min(DELIVERY_THREADS, len(remote))) as pool:
            outcomes += list(pool.map(lambda item: one(*item), remote))
    for (request, channel), (kind, value) in zip([*inline, *remote], outcomes, strict=True):
        if kind == "sent":
            sent.append(request.key)
            results[request.key] = _result("sent", channel, {"provider_id": value})
        elif kind == "rejected":
            rejected.append(request.key)
            results[request.key] = _result("failed: rejected", channel, {"error": mask_text(str(value))[:500]})
        else:
            # busy, rate-limited, network: this customer's send fails now; its row stays "sending" and
            # a later attempt under the same key delivers it again
            results[request.key] = value if isinstance(value, Exception) else RuntimeError(str(value))
    return sent, rejected


def _result(status: str, channel: str, detail: dict[str, Any]) -> ActionResult:
    return ActionResult(port="out" if status == "sent" else "skipped",
                        detail={**detail, "status": status, "channel": channel})


def _template_failed(node_id: str, exc: expressions.ExpressionError) -> Msg:
    """Why a message could not be rendered: the template's own error (a ``Msg``), kept for the reader's language."""
    return Msg("template of node '%(node)s': %(detail)s", node=node_id, detail=message_of(exc))
