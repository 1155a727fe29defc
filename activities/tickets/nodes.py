"""Ticket node types: ``trigger.ticket`` (trigger of ticket flows), ``ticket.route``, ``ticket.assign``,
``ticket.sla``, ``ticket.review``, ``ticket.step``, ``ticket.subtasks``, ``ticket.update`` — and
``action.create_ticket`` for journeys. Thin shells around :mod:`activities.tickets.service`.

In a ticket flow, expressions see the ticket as ``vars.ticket`` (``vars.ticket.amount_fen``,
``vars.ticket.fields.reason``, ``vars.ticket.priority``) and its customer as ``customer``. Nodes that
wait for people (review, step, sub-tasks) return ``defer_until``: the ticket workflow runs them again
when the ticket changes or the time comes, under the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from activities.tickets import review, service, sla
from activities.tickets.service import TicketError
from engine import expressions
from engine.actions import ActionContext, ActionFailed
from engine.db import models
from engine.db.session import transaction
from engine.flow import ID_PATTERN
from engine.nodes.base import ActionResult, Expression, NodeConfig, NodeType, Problem, Template
from engine.text import Msg, message_of

Priority = Literal["P1", "P2", "P3", "P4"]
#: how long a waiting node sleeps before looking again when nothing tells it (a missed signal)
RECHECK = timedelta(hours=1)


def _ticket_id(ctx: ActionContext) -> int:
    found = ctx.variables.get("ticket_id") or (ctx.variables.get("ticket") or {}).get("id")
    if found is None:
        raise ActionFailed(Msg("node '%(node)s' runs in ticket flows only (no ticket in this flow)", node=ctx.node_id))
    return int(found)


def _locked_ticket(ctx: ActionContext) -> models.Ticket:
    """This flow's ticket, locked for the node's change."""
    return service.get_ticket(ctx.db, _ticket_id(ctx), lock=True)


@contextmanager
def _failing_node(ctx: ActionContext, *errors: type[Exception]) -> Iterator[None]:
    """Turn ``errors`` raised inside into :class:`ActionFailed` naming the node (a ticket error by its
    message)."""
    try:
        yield
    except errors as exc:
        raise ActionFailed(Msg("node '%(node)s': %(detail)s", node=ctx.node_id, detail=message_of(exc))) from None


def _scope(ctx: ActionContext) -> dict[str, Any]:
    scope = ctx.expression_context()
    scope["now"] = ctx.now
    return scope


def _later(ctx: ActionContext, until: datetime | None = None) -> str:
    fallback = ctx.now + RECHECK
    return (min(until, fallback) if until else fallback).isoformat()


class TicketCreated(NodeType):
    type = "trigger.ticket"
    category = "trigger"
    kinds = ("ticket",)
    label = {"zh-CN": "工单创建", "en": "Ticket created"}
    description = {"zh-CN": "工单类型的流程从这里开始（接口、旅程、退款事件创建的工单）",
                   "en": "A ticket of the type that uses this flow was created (API, journey or refund event)"}


class RouteRule(NodeConfig):
    when: Expression = Field(description="e.g. vars.ticket.amount_fen > 500000 and customer.vip_level >= 3")
    group: str = Field(pattern=ID_PATTERN, description="the agent group (queue) to route to")
    priority: Priority | None = None
    needs: list[str] | None = Field(default=None, description="skills the ticket needs, most important first")


class RouteConfig(NodeConfig):
    rules: list[RouteRule] = Field(default_factory=list, description="the first rule that holds decides")
    group_from: Expression | None = Field(default=None, description="an expression giving the group key, e.g. "
                                          "vars.queue from a decision table; used when no rule holds")
    default_group: str = Field(default="default", pattern=ID_PATTERN, description="when nothing else decides")
    needs: list[str] = Field(default_factory=list, description="skills the ticket needs (when no rule sets them)")


class TicketRoute(NodeType):
    type = "ticket.route"
    kinds = ("ticket",)
    label = {"zh-CN": "路由到队列", "en": "Route to queue"}
    description = {"zh-CN": "按规则（金额、VIP 等级、关键词…）把工单放入客服组队列",
                   "en": "Put the ticket in an agent group's queue by rules (amount, VIP level, keywords…)"}
    Config = RouteConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        scope = _scope(ctx)
        group, priority, needs = None, None, list(config.needs) or None
        with _failing_node(ctx, expressions.ExpressionError):
            for rule in config.rules:
                if expressions.test(rule.when, scope):
                    group, priority = rule.group, rule.priority
                    needs = list(rule.needs) if rule.needs is not None else needs
                    break
            if group is None and config.group_from:
                value = expressions.evaluate(config.group_from, scope)
                group = str(value) if value else None
        ticket = _locked_ticket(ctx)
        with _failing_node(ctx, TicketError):
            service.route(ctx.db, ticket, group or config.default_group, ctx.now, needs=needs, priority=priority,
                          key=ctx.key)
        return ActionResult(variables={"queue": ticket.group_key},
                            detail={"group": ticket.group_key, "priority": ticket.priority})


class TicketAssign(NodeType):
    type = "ticket.assign"
    kinds = ("ticket",)
    label = {"zh-CN": "分配坐席", "en": "Assign agent"}
    description = {"zh-CN": "按客服组的策略分配（轮询、最少负载、技能），尊重在线状态与容量",
                   "en": "Assign by the group's strategy (round-robin, least-loaded, skills), within availability "
                         "and capacity"}
    ports = ("assigned", "queued")

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        ticket = _locked_ticket(ctx)
        if ticket.assignee_id is not None:
            return ActionResult(port="assigned", detail={"assignee_id": ticket.assignee_id, "already": True})
        pick = service.assign(ctx.db, ticket, ctx.now, key=ctx.key)
        if pick.user_id is None:
            return ActionResult(port="queued", detail={"reason": pick.reason})
        return ActionResult(port="assigned", variables={"assignee_id": pick.user_id},
                            detail={"assignee_id": pick.user_id, "reason": pick.reason})


class SlaConfig(NodeConfig):
    targets: dict[Priority, sla.SlaTargets] = Field(
        description="business-time targets per priority, e.g. {'P3': {'first_response': 'PT1H', "
                    "'resolution': 'PT4H'}}")
    warn_before: str | None = Field(default="PT30M", description="warn this much business time before a breach",
                                    json_schema_extra={"format": "duration"})
    escalation: list[sla.Escalation] = Field(default_factory=lambda: list[sla.Escalation](["notify_supervisor"]),
                                             description="on breach: notify_supervisor, raise_priority, reassign")
    calendar: dict[str, Any] | None = Field(default=None, description="a business calendar; default: the group's")

    @model_validator(mode="after")
    def _valid(self) -> SlaConfig:
        sla.SlaPolicy.model_validate({"targets": self.targets, "warn_before": self.warn_before,
                                      "escalation": self.escalation})
        if self.calendar is not None:
            sla.calendar_of(self.calendar)
        return self


class TicketSla(NodeType):
    type = "ticket.sla"
    kinds = ("ticket",)
    label = {"zh-CN": "SLA 计时", "en": "SLA timers"}
    description = {"zh-CN": "按优先级的首次响应/再次响应/解决时限（工作时间），超时前提醒、超时升级",
                   "en": "First/next response and resolution targets per priority in business hours; warn, "
                         "then escalate on breach"}
    Config = SlaConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        ticket = _locked_ticket(ctx)
        policy = {"targets": {k: v.model_dump() for k, v in config.targets.items()},
                  "warn_before": config.warn_before, "escalation": list(config.escalation)}
        service.start_sla(ctx.db, ticket, policy, ctx.now, config.calendar, key=ctx.key)
        return ActionResult(detail={"priority": ticket.priority, "plan": service.sla_plan(ctx.db, ticket)[:3]})


class ReviewConfig(NodeConfig):
    steps: list[review.ReviewStep] = Field(min_length=1, max_length=9,
                                           description="approvers in order, e.g. team lead → department head → "
                                                       "finance")


class TicketReview(NodeType):
    type = "ticket.review"
    kinds = ("ticket",)
    label = {"zh-CN": "多级复核", "en": "Multi-level review"}
    description = {"zh-CN": "审批链（如组长→部门主管→财务），每级可通过/驳回/退回，支持超时与转交",
                   "en": "A chain of approvers, each approve / reject / send back, with timeouts and delegation"}
    Config = ReviewConfig
    ports = ("approved", "rejected", "sent_back")

    @classmethod
    def is_wait(cls) -> bool:
        """It waits for people (an action that defers), so a send-back loop through it does not spin."""
        return True

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        ticket = _locked_ticket(ctx)
        round_ = int(ctx.key.rsplit("/", 1)[-1])
        rows = service.open_review(ctx.db, ticket, ctx.node_id, round_, config.steps, ctx.now)
        outcome = service.review_timeouts(ctx.db, ticket, rows, ctx.now)
        if outcome is not None:
            return ActionResult(port=outcome, variables={"review": outcome},
                                detail={"outcome": outcome, "round": round_})
        waiting = next(r for r in rows if r.status == "waiting")
        return ActionResult(defer_until=_later(ctx, waiting.due_at),
                            detail={"waiting": waiting.step + 1, "approver": waiting.approver})


class StepConfig(NodeConfig):
    name: str = Field(min_length=1, max_length=120, examples=["备件检查"])
    instructions: Template = Field(default="", description="what the agent should do")
    outcomes: list[str] = Field(min_length=1, max_length=8, examples=[["in_stock", "out_of_stock"]],
                                description="the answers the agent can give; each is an output port")
    timeout: str | None = Field(default=None, description="ISO 8601 duration; then the 'timeout' port",
                                json_schema_extra={"format": "duration"})

    @model_validator(mode="after")
    def _ports(self) -> StepConfig:
        import re

        for outcome in self.outcomes:
            if not re.match(ID_PATTERN, outcome) or outcome == "timeout":
                raise ValueError(Msg("outcome '%(outcome)s' must be a port name (letters, digits, _ -), not "
                                     "'timeout'",
                                     outcome=outcome))
        if self.timeout:
            from engine.durations import parse_duration

            parse_duration(self.timeout)
        return self


class TicketStep(NodeType):
    type = "ticket.step"
    kinds = ("ticket",)
    label = {"zh-CN": "人工步骤", "en": "Agent step"}
    description = {"zh-CN": "请坐席完成一个步骤（如备件检查）并选择结果，结果决定去向",
                   "en": "Ask the agent to do a step (e.g. a spare-part check) and pick the outcome"}
    Config = StepConfig
    ports = ("timeout",)

    @classmethod
    def is_wait(cls) -> bool:
        """It waits for the agent (an action that defers), so a loop through it does not spin."""
        return True

    @classmethod
    def output_ports(cls, config: BaseModel) -> list[str]:
        assert isinstance(config, StepConfig)
        return [*config.outcomes, "timeout"]

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        if len(set(config.outcomes)) != len(config.outcomes):
            return [Problem(None, "outcomes", Msg("outcomes repeat"), Msg("give each outcome its own name"))]
        return []

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        from engine.durations import parse_duration

        ticket = _locked_ticket(ctx)
        opened = service.open_step(ctx.db, ticket, ctx.key, ctx.node_id, config.name,
                                   expressions.render(config.instructions, _scope(ctx)) if config.instructions else "",
                                   list(config.outcomes), ctx.now)
        done = service.step_outcome(ctx.db, ctx.key)
        if done is not None:
            return ActionResult(port=done, variables={f"step_{ctx.node_id}": done}, detail={"outcome": done})
        due = opened + parse_duration(config.timeout) if config.timeout else None
        if due is not None and due <= ctx.now:
            return ActionResult(port="timeout", detail={"outcome": "timeout"})
        return ActionResult(defer_until=_later(ctx, due), detail={"waiting": config.name})


class SubtaskSpec(NodeConfig):
    group: str = Field(pattern=ID_PATTERN, description="the department's agent group")
    subject: Template = Field(min_length=1, examples=["设计：{{ vars.ticket.subject }}"])
    needs: list[str] = Field(default_factory=list)
    priority: Priority | None = None


class SubtasksConfig(NodeConfig):
    tasks: list[SubtaskSpec] = Field(min_length=1, max_length=20)
    wait: bool = Field(default=True, description="wait until every sub-task is resolved")


class TicketSubtasks(NodeType):
    type = "ticket.subtasks"
    kinds = ("ticket",)
    label = {"zh-CN": "拆分子任务", "en": "Sub-tasks"}
    description = {"zh-CN": "为各部门创建子工单（设计、采购、物流…），可等待全部完成",
                   "en": "Create sub-tickets for departments (design, purchasing, logistics…); optionally wait"}
    Config = SubtasksConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        parent = _locked_ticket(ctx)
        scope = _scope(ctx)
        specs = [{"group": t.group, "subject": expressions.render(t.subject, scope), "needs": list(t.needs),
                  "priority": t.priority} for t in config.tasks]
        if not service.progress(ctx.db, parent.id)["total"]:
            with _failing_node(ctx, TicketError):
                service.create_subtasks(ctx.db, parent, specs, ctx.now, "flow", key=ctx.key)
        view = service.progress(ctx.db, parent.id)
        if config.wait and view["done"] < view["total"]:
            return ActionResult(defer_until=_later(ctx), detail={"done": view["done"], "total": view["total"]})
        return ActionResult(variables={"subtasks": [s["id"] for s in view["subtasks"]]},
                            detail={"done": view["done"], "total": view["total"]})


class UpdateConfig(NodeConfig):
    status: Literal["open", "pending", "resolved", "closed"] | None = None
    priority: Priority | None = None
    note: Template | None = Field(default=None, description="an internal note")
    reply: Template | None = Field(default=None, description="a public reply to the customer")


class TicketUpdate(NodeType):
    type = "ticket.update"
    kinds = ("ticket",)
    label = {"zh-CN": "更新工单", "en": "Update ticket"}
    description = {"zh-CN": "改状态/优先级、写内部备注或回复客户",
                   "en": "Change status or priority, add an internal note or reply to the customer"}
    Config = UpdateConfig
    #: a reply is delivered to the customer after the change commits (an outside call; keyed on the reply)
    transactional = False

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        scope = _scope(ctx)
        with _failing_node(ctx, expressions.ExpressionError):
            note = expressions.render(config.note, scope) if config.note else None
            text = expressions.render(config.reply, scope) if config.reply else None
        ctx.db.rollback()
        detail: dict[str, Any] = {}
        reply_event: int | None = None
        with transaction(ctx.services.database_url) as db:
            ticket = service.get_ticket(db, _ticket_id(ctx), lock=True)
            if note:
                service.record(db, ticket, "note", ctx.now, "flow", body=note, key=f"{ctx.key}/note")
            if text:
                reply_event = service.reply(db, ticket, text, ctx.now, "flow", key=f"{ctx.key}/reply").id
            if config.priority:
                service.set_priority(db, ticket, config.priority, ctx.now, "flow", key=f"{ctx.key}/priority")
            if config.status and ticket.status != config.status:
                service.set_status(db, ticket, config.status, ctx.now, "flow")
            detail.update(status=ticket.status, priority=ticket.priority)
        if reply_event is not None:
            detail["reply"] = service.deliver_reply(ctx.services.database_url, _ticket_id(ctx), reply_event)
        return ActionResult(detail=detail)


class CreateTicketConfig(NodeConfig):
    ticket_type: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,59}$", examples=["complaint"])
    subject: Template = Field(min_length=1, examples=["{{ customer.name }} 的投诉"])
    description: Template = ""
    priority: Priority | None = None
    group: str | None = Field(default=None, description="the queue; default: the ticket type's")
    needs: list[str] = Field(default_factory=list)
    fields: dict[str, Template] = Field(default_factory=dict, description="custom field values (templates)")
    channel: Literal["dry-run", "wecom", "wechat_oa", "sms", "email", "webhook"] = Field(
        default="wecom", description="where replies to the customer go")


class CreateTicket(NodeType):
    type = "action.create_ticket"
    kinds = ("journey",)
    label = {"zh-CN": "创建工单", "en": "Create ticket"}
    description = {"zh-CN": "为客户创建一张工单，工单按其类型的流程处理",
                   "en": "Create a ticket for the customer; it runs its type's ticket flow"}
    Config = CreateTicketConfig
    #: the ticket row is written in its own transaction (deduplicated by this action's key); its workflow is
    #: started after that commit, outside it, so no write lock is held meanwhile
    transactional = False

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        scope = _scope(ctx)
        with _failing_node(ctx, expressions.ExpressionError):
            fields = {k: expressions.render(v, scope) for k, v in config.fields.items()}
            subject = expressions.render(config.subject, scope)
            text = expressions.render(config.description, scope) if config.description else ""
        ctx.db.rollback()
        # a ValueError: a custom field that does not fit the type
        with _failing_node(ctx, TicketError, ValueError), transaction(ctx.services.database_url) as db:
            ticket, created = service.create_ticket(
                db, type_key=config.ticket_type, subject=subject, description=text, customer_id=ctx.customer_id,
                fields=fields, priority=config.priority, group=config.group, needs=config.needs,
                source="flow", channel=config.channel, dedupe_key=f"flow:{ctx.key}", actor="flow", now=ctx.now)
            ticket_id = ticket.id
        # its workflow is started once, after this commit, by the process's routing pipeline (engine/follow_ups.py;
        # create_ticket noted it), or by the re-router's start_pending if this process dies first
        return ActionResult(variables={"ticket_id": ticket_id}, detail={"ticket_id": ticket_id, "created": created})


NODE_TYPES: list[type[NodeType]] = [TicketCreated, TicketRoute, TicketAssign, TicketSla, TicketReview, TicketStep,
                                    TicketSubtasks, TicketUpdate, CreateTicket]
