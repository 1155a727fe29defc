"""action.wecom_mass_send: a WeCom enterprise mass message (企业群发) to the customer, through their owning staff
member, who confirms it in the WeCom client — and the flow goes on by ``out`` when it was sent or by
``skipped`` with the reason (not a friend, already received another mass message, not confirmed, at the
allowance, no owner, no consent …).

The node is a thin shell: the send goes through the workforce's mass-send machinery (mass_sends.py, the
``MassSendWorkflow`` and its per-recipient outcomes), bookkept per idempotency key by flow_mass_sends.py.

* In a journey each visit makes a mass send of one customer; the journey then waits durably — a deferral
  (``ActionResult.awaiting``) that the mass send's workflow ends with the ``wake`` signal once WeCom reports
  the outcome, or that runs the node again at a backstop time — and the node, run again under the same key,
  reads the outcome. Nothing is sent twice: the key's request row is written with the mass send.
* A broadcast page (segment trigger, no waits) runs :meth:`WeComMassSend.run_many`: one mass send per
  distinct text for the page (one WeCom task per sender, ≤ 10,000 customers), the customers parked at the
  node until their outcomes come in, then resumed by the workflow (engine.broadcast.resume_page).

WeCom's rules hold as in mass sends from the workforce screens: ≤ 10,000 customers per task, ≤ 9 attachments,
text ≤ 4,000 bytes, each recipient's monthly/weekly/daily allowance (the corp's policy, excluded or deferred),
staff confirmation by a deadline; images go as uploaded WeCom media. The send policy gate applies first
(consent, the cross-flow frequency cap, quiet hours), as for ``action.send_message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from activities.workforce import flow_mass_sends
from activities.workforce.flow_mass_sends import Ask, Content, Made, Outcome
from connectors.wecom.client import MAX_ATTACHMENTS, MAX_TEXT_BYTES
from engine import connectors as configured
from engine import expressions
from engine.action_context import ActionContext, BulkActionContext, Services
from engine.actions import ActionFailed
from engine.broadcast import parse_instance
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.nodes.base import ActionResult, NodeConfig, NodeType, Template
from engine.pii import mask_text
from engine.policies import Decision, FrequencyCap, gate_many
from engine.runtime import ActionRequest
from engine.settings import get_settings
from engine.text import Msg, message_of

#: a journey whose outcome is pending runs the node again after at most this long even without a ``wake``
BACKSTOP = timedelta(hours=6)
#: … and at the latest this long after the mass send's deadline, when every outcome is final
AFTER_DEADLINE = timedelta(minutes=15)
#: the mass send's workflow polls WeCom this often (staff confirmation takes minutes to days)
POLL_SECONDS = 600


class WeComMassSendConfig(NodeConfig):
    connector_id: str | None = Field(default=None, max_length=80,
                                     description="the WeCom connector (default: the first enabled one)")
    text: Template = Field(default="", max_length=4000,
                           description="message text; {{ customer.name }} etc. In a broadcast, customers with "
                                       "the same text share one task per staff member",
                           examples=["双十二会员专享，点击领取"])
    attachments: list[str] = Field(default_factory=list, max_length=MAX_ATTACHMENTS,
                                   description="image or link URLs (at most 9); images are uploaded to WeCom")
    category: Literal["promotional", "transactional"] = Field(
        default="promotional", description="transactional messages are exempt from frequency caps and quiet hours")
    at_limit: Literal["exclude", "defer"] | None = Field(
        default=None, description="a customer at the corp's mass-message allowance: skip, or send when their "
                                  "next window opens (default: the corp's setting)")
    deadline_hours: int = Field(default=72, ge=1, le=24 * 30,
                                description="a staff member who has not confirmed by then leaves it unsent")

    @field_validator("attachments")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(Msg("attachment '%(value)s' is not an http(s) URL",
                                     value=url[:60]))
        return value

    @model_validator(mode="after")
    def _content(self) -> WeComMassSendConfig:
        if not self.text.strip() and not self.attachments:
            raise ValueError(Msg("a mass send needs a text or an attachment"))
        return self


def _cap() -> FrequencyCap | None:
    text = get_settings().frequency_cap
    return FrequencyCap.parse(text) if text else None


class WeComMassSend(NodeType):
    type = "action.wecom_mass_send"
    category = "action"
    label = {"zh-CN": "企业微信群发", "en": "WeCom mass send"}
    description = {"zh-CN": "通过客户的跟进成员发送企业群发（成员在企业微信中确认后发出）；已发送走 out，"
                            "未发送（非好友、已收到其他群发、未确认、达到接收上限等）走 skipped",
                   "en": "Send a WeCom enterprise mass message through the customer's staff member, who confirms "
                         "it in WeCom; out when sent, skipped with the reason otherwise (not a friend, already "
                         "received another mass message, not confirmed, at the allowance …)"}
    kinds = ("journey",)
    Config = WeComMassSendConfig
    ports = ("out", "skipped")
    #: WeCom calls and starting the mass send's workflow happen outside the ledger's transaction
    transactional = False
    timeout = timedelta(minutes=2)

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="skipped", detail={"status": "skipped: no customer"})
        text = _render(config, ctx.expression_context(), ctx.node_id)
        if ctx.simulate:  # a preview creates nothing in WeCom
            return ActionResult(port="out", detail={"status": "preview: not sent", "content": text})
        ctx.db.rollback()  # done reading: no connection held while WeCom and the workflow are called
        return _fulfil(ctx.services, config, [ctx.request], {ctx.key: text}, ctx.now)[0]

    @classmethod
    def run_many(cls, ctx: BulkActionContext, config: Any) -> Sequence[ActionResult | Exception]:
        texts: dict[str, str] = {}
        results: dict[str, ActionResult | Exception] = {}
        for request in ctx.requests:
            if request.customer_id is None:
                results[request.key] = ActionResult(port="skipped", detail={"status": "skipped: no customer"})
                continue
            try:
                texts[request.key] = _render(config, ctx.expression_context(request), request.node_id)
            except ActionFailed as exc:
                results[request.key] = exc
        live = [r for r in ctx.requests if r.key in texts]
        if live:
            results.update(zip([r.key for r in live],
                               _fulfil(ctx.services, config, live, texts, ctx.now), strict=True))
        return [results[r.key] for r in ctx.requests]


def _render(config: WeComMassSendConfig, context: dict[str, Any], node_id: str) -> str:
    try:
        text = expressions.render(config.text, context) if config.text else ""
    except expressions.ExpressionError as exc:
        raise ActionFailed(Msg("text of node '%(node)s': %(detail)s", node=node_id, detail=message_of(exc))) from None
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ActionFailed(Msg("the text of node '%(node)s' is %(count)s bytes for this customer; WeCom takes at "
                               "most %(limit)s", node=node_id, count=len(text.encode("utf-8")), limit=MAX_TEXT_BYTES))
    if not text.strip() and not config.attachments:
        raise ActionFailed(Msg("the text of node '%(node)s' is empty for this customer and there is no attachment",
                               node=node_id))
    return text


def _fulfil(services: Services, config: WeComMassSendConfig, requests: list[ActionRequest],
            texts: dict[str, str], now: datetime) -> list[ActionResult]:
    """The gate, then the mass sends (found or made once per key), then each request's result."""
    url = services.database_url
    first = requests[0]
    with session_factory(url)() as db:
        loaded = (configured.load(db, config.connector_id) if config.connector_id
                  else configured.for_channel(db, "wecom"))
        known = flow_mass_sends.outcomes(db, [r.key for r in requests])
    results: dict[str, ActionResult] = {key: _from(outcome, now, key) for key, outcome in known.items()}
    todo = [r for r in requests if r.key not in known]
    asks: list[Ask] = []
    if loaded is None or loaded.kind != "wecom":
        results.update((r.key, _skipped("skipped: channel not configured")) for r in todo)
        todo = []
    if todo:
        decided = _gate(url, config, todo, texts, now)
        for request in todo:
            decision = decided[request.key]
            if decision.until is not None:  # quiet hours: wait (journeys) or leave for the next run (broadcasts)
                results[request.key] = ActionResult(port="out", detail={"status": decision.outcome},
                                                    defer_until=decision.until.isoformat())
            elif not decision.allowed:
                results[request.key] = _skipped(decision.outcome)
            else:
                broadcast = parse_instance(request.workflow_id, request.flow_id)
                asks.append(Ask(key=request.key, customer_id=str(request.customer_id),
                                workflow_id=request.workflow_id, text=texts[request.key],
                                mode="broadcast" if broadcast else "journey",
                                run_key=broadcast[0] if broadcast else None, variables=dict(request.variables)))
    made = Made()
    if asks and loaded is not None:
        content = Content(connector_id=loaded.id, flow_id=first.flow_id, version=first.version,
                          node_id=first.node_id, attachments=list(config.attachments), at_limit=config.at_limit,
                          deadline_hours=config.deadline_hours)
        try:
            made = flow_mass_sends.create(url, content, asks, now)
        except IntegrityError:  # a racing attempt of the same keys made them: read what it made
            with session_factory(url)() as db:
                made = Made(outcomes=flow_mass_sends.outcomes(db, [a.key for a in asks]))
        except ValueError as exc:  # the rendered content is not what WeCom takes
            raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=first.node_id,
                                   detail=message_of(exc))) from None
        for key, reason in made.refused.items():
            results[key] = _skipped(reason)
        for key, outcome in made.outcomes.items():
            results[key] = _from(outcome, now, key)
    pending = {o.mass_send_id for o in [*known.values(), *made.outcomes.values()] if o.pending}
    if loaded is not None:
        _start(services, loaded.id, sorted({*made.mass_send_ids, *pending}))
    _log_refusals(url, config, requests, texts, results, now)
    return [results[r.key] for r in requests]


def _gate(url: str | None, config: WeComMassSendConfig, requests: list[ActionRequest], texts: dict[str, str],
          now: datetime) -> dict[str, Decision]:
    """Consent, the cross-flow cap and quiet hours for each request (engine/policies.py, as every send)."""
    settings = requests[0].settings
    with transaction(url) as db:
        verdicts = gate_many(db, [str(r.customer_id) for r in requests], "wecom", config.category, settings, now,
                             _cap())
    return {r.key: verdicts[str(r.customer_id)] for r in requests}


def _from(outcome: Outcome, now: datetime, key: str) -> ActionResult:
    """The node's result for a recipient's outcome: its port when final; else a deferral the ``wake`` signal
    naming ``key`` ends (or the backstop: at most :data:`BACKSTOP`, and just after the mass send's deadline)."""
    detail = {"status": outcome.reason, "channel": "wecom", "mass_send_id": outcome.mass_send_id}
    if not outcome.pending:
        return ActionResult(port=outcome.port, detail=detail,
                            variables={"wecom_mass_send": {"status": outcome.status, "id": outcome.mass_send_id}})
    until = now + BACKSTOP
    if outcome.deadline is not None:
        until = min(until, max(now, outcome.deadline) + AFTER_DEADLINE)
    waiting = "waiting for staff confirmation" if outcome.status in ("queued", "waiting", "requeued") \
        else "deferred: at limit"
    return ActionResult(port="out", detail={**detail, "status": waiting}, defer_until=until.isoformat(),
                        awaiting=key)


def _skipped(status: str) -> ActionResult:
    return ActionResult(port="skipped", detail={"status": status, "channel": "wecom"},
                        variables={"wecom_mass_send": {"status": status}})


def _start(services: Services, connector_id: str, mass_send_ids: list[int]) -> None:
    """Start (or find running) each mass send's workflow, which creates the tasks and follows the outcomes."""
    if not mass_send_ids:
        return
    client = services.extras.get("temporal_client")
    queue = services.extras.get("task_queue")
    if client is None or not queue:
        raise RuntimeError("a WeCom mass send needs the worker's Temporal client (run it on a Tideflow worker)")
    from activities.workforce.runtime import start_mass_send

    async def start_all() -> None:
        for mass_send_id in mass_send_ids:
            await start_mass_send(client, connector_id, str(queue), mass_send_id, poll_seconds=POLL_SECONDS)

    services.run_async(start_all())


def _log_refusals(url: str | None, config: WeComMassSendConfig, requests: list[ActionRequest],
                  texts: dict[str, str], results: dict[str, ActionResult], now: datetime) -> None:
    """A message-log row for each customer the gate (or WeCom contact-ship) stopped before a mass send was made,
    under the action's key, as ``action.send_message`` records its refusals (once: the key is unique)."""
    refused = [r for r in requests if results[r.key].port == "skipped" and "mass_send_id" not in results[r.key].detail
               and r.customer_id is not None]
    if not refused:
        return
    with transaction(url) as db:
        have = set(db.scalars(select(models.Message.idempotency_key).where(
            models.Message.idempotency_key.in_([r.key for r in refused]))))
        for request in refused:
            if request.key not in have:
                db.add(models.Message(
                    idempotency_key=request.key, customer_id=request.customer_id, channel="wecom",
                    content=mask_text(texts.get(request.key) or "[attachment]"),
                    status=str(results[request.key].detail["status"]), category=config.category,
                    flow_id=request.flow_id, node_id=request.node_id, workflow_id=request.workflow_id,
                    created_at=now))
