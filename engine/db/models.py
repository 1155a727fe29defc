"""The database schema. Every change here comes with an Alembic migration in engine/migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, UTCDateTime, utcnow  # noqa: F401  (re-exported)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str | None] = mapped_column(String(120))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: what the token may do: ``full`` (all its user may), ``read`` (reading only), ``events`` (send events)
    scope: Mapped[str] = mapped_column(String(20), default="full", server_default="full")
    #: who made it (an admin may make a token for another user)
    created_by: Mapped[str | None] = mapped_column(String(80))


class WebSession(Base):
    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class FlowRecord(Base):
    """A flow as the designer edits it: the draft document plus its published versions."""

    __tablename__ = "flows"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft, active, paused, archived
    draft: Mapped[dict[str, Any]]
    current_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(80))


class FlowVersion(Base):
    """An immutable, numbered, compiled version of a flow."""

    __tablename__ = "flow_versions"
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]
    compiled: Mapped[dict[str, Any]]
    trigger_type: Mapped[str] = mapped_column(String(60))
    trigger_event: Mapped[str | None] = mapped_column(String(120), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(60))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    consent: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_into: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Identity(Base):
    """One way of recognising a customer: (kind, value) is unique across all customers."""

    __tablename__ = "identities"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventRecord(Base):
    """An accepted event. (source, external_id) is unique, so a redelivery is stored once."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_events_source_external_id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    source: Mapped[str] = mapped_column(String(60))
    external_id: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(120), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    identities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)  # received, routed, quarantined
    routed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    #: routing attempts that failed for this event (not for the infrastructure): quarantined at the limit
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: a router has taken the event until then; the re-router only takes events whose claim has lapsed
    claimed_until: Mapped[datetime | None]
    #: the process holding the claim (engine.db.quarantine_models.ClaimHolder): once its heartbeat is stale the
    #: claim counts as lapsed; NULL (a process of an older version) keeps the ``claimed_until`` rule alone
    claimed_by: Mapped[str | None] = mapped_column(String(120))


class Journey(Base):
    """One customer's run through one flow version (one Temporal workflow)."""

    __tablename__ = "journeys"
    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    #: running, waiting, completed, converted, exited, failed, cancelled
    status: Mapped[str] = mapped_column(String(20), index=True)
    current_node: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    checkpoint: Mapped[int] = mapped_column(Integer, default=0)
    #: why it failed (the node and its error, e.g. an expression past its bound), for the journey API and page
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_journeys_flow_customer", "flow_id", "customer_id"),)


class LedgerEntry(Base):
    """The idempotency ledger: one row per side effect, keyed ``<workflow>/<node>/<visit>``."""

    __tablename__ = "ledger"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """A message sent (or skipped) to a customer; the idempotency key makes a retry a no-op."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(30))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(40))  # sent, skipped: capped, ...
    flow_id: Mapped[str | None] = mapped_column(String(80))
    node_id: Mapped[str | None] = mapped_column(String(80))
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(10), default="out")
    #: promotional messages count against frequency caps; transactional ones do not
    category: Mapped[str] = mapped_column(String(20), default="promotional", server_default="promotional")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_messages_customer_created", "customer_id", "created_at"),)


class NodeStat(Base):
    """Per-node counters by flow version: entered, left (per port), waiting now, failed, converted."""

    __tablename__ = "node_stats"
    flow_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    port: Mapped[str] = mapped_column(String(80), primary_key=True, default="")
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: what the changed thing looked like before and after (secrets never: engine.auth.audit scrubs them)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_audit_log_actor_at", "actor", "at"), Index("ix_audit_log_action", "action"),
                      Index("ix_audit_log_target", "target"))


class CouponCampaign(Base):
    """A coupon campaign: stock (total and per day), per-customer limit, validity."""

    __tablename__ = "coupon_campaigns"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: face value in fen (a discount) — never a float
    value_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    total_stock: Mapped[int | None] = mapped_column(Integer)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    daily_budget: Mapped[int | None] = mapped_column(Integer)
    per_customer_limit: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    #: days a coupon stays valid after issue (None: until valid_until)
    validity_days: Mapped[int | None] = mapped_column(Integer)
    code_prefix: Mapped[str] = mapped_column(String(12), default="")
    status: Mapped[str] = mapped_column(String(20), default="active")  # active, paused, ended
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponDailyCount(Base):
    """Coupons issued per campaign per (campaign-timezone) day, for daily budgets."""

    __tablename__ = "coupon_daily_counts"
    campaign_id: Mapped[str] = mapped_column(ForeignKey("coupon_campaigns.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    issued: Mapped[int] = mapped_column(Integer, default=0)


class Coupon(Base):
    """One issued coupon. ``idempotency_key`` makes issuing per journey node and visit happen once."""

    __tablename__ = "coupons"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("coupon_campaigns.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="issued")  # issued, redeemed, expired
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
    order_id: Mapped[str | None] = mapped_column(String(120))


class TagRule(Base):
    """Auto-tagging: when an event of ``event_type`` arrives and ``condition`` holds, add/remove tags."""

    __tablename__ = "tag_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(120), index=True)
    condition: Mapped[str] = mapped_column(Text, default="true")
    add_tags: Mapped[list[Any]] = mapped_column(default=list)
    remove_tags: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectorConfig(Base):
    """One configured outside system (a WeCom corp, a Youzan shop, an SMTP server …).

    ``settings`` holds what may be shown (corp id, shop id, host); ``secrets`` holds what may not
    (tokens, AES keys, passwords), encrypted at rest with the instance key (engine/secrets.py).
    """

    __tablename__ = "connector_configs"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    """The canonical order table: one row per shop order, whichever platform sent it.

    Filled from ``order.*`` events (connectors/canonical.py) by the order-book hook; settlement
    collects from here with SQL aggregation. ``status`` only moves forward; ``refunded_fen`` sums the
    completed refunds of the order.
    """

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("channel", "shop", "order_id", name="uq_orders_channel_shop_order"),
                      Index("ix_orders_paid_at_shop", "paid_at", "shop"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    shop: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(60))
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    items: Mapped[list[Any]] = mapped_column(default=list)
    attribution: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime | None] = mapped_column(nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    """A refund (or refund request) of a shop order, from ``refund.*`` events."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("channel", "shop", "refund_id", name="uq_refunds_channel_shop_refund"),
                      Index("ix_refunds_order", "channel", "shop", "order_id"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    shop: Mapped[str] = mapped_column(String(80))
    refund_id: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(60))
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SettlementRun(Base):
    """One settlement of one period under one plan version: created once, unique on
    (plan key, plan version, period) — a re-run of the period finds this row (activities/settlement)."""

    __tablename__ = "settlement_runs"
    __table_args__ = (UniqueConstraint("plan_key", "plan_version", "period_from", "period_to",
                                       name="uq_settlement_runs_plan_period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_key: Mapped[str] = mapped_column(String(80), index=True)
    plan_version: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column()
    flow_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    cycle: Mapped[str] = mapped_column(String(20))
    period_from: Mapped[str] = mapped_column(String(10))
    period_to: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    groups: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Statement(Base):
    """What one party earned in one run: draft → pending → approved/rejected → paid. An adjustment
    (``seq`` > 0) corrects an earlier statement and links to it."""

    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("run_id", "party", "seq", name="uq_statements_run_party_seq"),
                      Index("ix_statements_status", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("settlement_runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    party: Mapped[str] = mapped_column(String(80))
    party_type: Mapped[str] = mapped_column(String(40), default="")
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    clawback_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    adjusts_statement_id: Mapped[int | None] = mapped_column(ForeignKey("statements.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatementLine(Base):
    """One traceable part of a statement: the rule that produced it and the orders (or refunds) it covers."""

    __tablename__ = "statement_lines"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    exact_fen: Mapped[str] = mapped_column(String(80))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refs: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Payout(Base):
    """A payout instruction for an approved statement, written once per idempotency key."""

    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    party: Mapped[str] = mapped_column(String(80))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectorCursor(Base):
    """How far a polled shop connector (Taobao/Tmall, JD …) has read one stream (``orders``,
    ``refunds``): the platform's modified-time watermark, moved only after a window's events are stored."""

    __tablename__ = "connector_cursors"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    stream: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- tickets (工单): types, agent groups, agents, tickets, their audit trail and reviews ---------------


class TicketType(Base):
    """A kind of ticket defined by ops: its custom fields, the flow its tickets run and where they queue."""

    __tablename__ = "ticket_types"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: [{"key", "label", "type": text|number|choice|date, "required", "choices"}]
    fields: Mapped[list[Any]] = mapped_column(default=list)
    flow_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    default_group: Mapped[str] = mapped_column(String(60), default="default")
    default_priority: Mapped[str] = mapped_column(String(2), default="P3")
    #: event types that create a ticket of this type automatically (e.g. ["refund.requested"])
    auto_events: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentGroup(Base):
    """A queue / group of agents (客服组) with its assignment strategy, supervisor and SLA calendar."""

    __tablename__ = "agent_groups"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    calendar: Mapped[dict[str, Any]] = mapped_column(default=dict)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    notify_channel: Mapped[str] = mapped_column(String(30), default="wecom")
    #: round-robin: the user id assigned last (the next turn goes to the next id after it)
    rr_last: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    """A user who works tickets (坐席): groups, skills, capacity, availability and working hours."""

    __tablename__ = "agents"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    groups: Mapped[list[Any]] = mapped_column(default=list)
    #: ordered skills, e.g. ["空调", "冰箱"]
    skills: Mapped[list[Any]] = mapped_column(default=list)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability: Mapped[str] = mapped_column(String(10), default="offline")
    #: a business calendar (activities/tickets/calendar.py); empty = always when online
    working_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: how to reach the agent: {"wecom_userid": "...", "email": "..."}
    contact: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_assigned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    """One ticket (工单). ``dedupe_key`` makes an automatic source (a refund) create at most one."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_group_status", "group_key", "status"),
                      Index("ix_tickets_assignee_status", "assignee_id", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type_key: Mapped[str] = mapped_column(ForeignKey("ticket_types.key"))
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True, nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="open")
    priority: Mapped[str] = mapped_column(String(2), default="P3")
    group_key: Mapped[str] = mapped_column(ForeignKey("agent_groups.key"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    needs: Mapped[list[Any]] = mapped_column(default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(30), default="api")
    channel: Mapped[str] = mapped_column(String(30), default="dry-run")
    order_channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    order_shop: Mapped[str | None] = mapped_column(String(80), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    refund_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True, index=True)
    sla: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TicketEvent(Base):
    """The audit trail of a ticket: replies (public), notes (internal), every change and SLA action."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    public: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(80), default="system")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: makes a retried step (an activity, an SLA firing) write its event once
    key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketReview(Base):
    """One step of a ticket's review chain (三级复核) in one round; a send-back to the start opens a new round."""

    __tablename__ = "ticket_reviews"
    __table_args__ = (UniqueConstraint("ticket_id", "chain", "round", "step", name="uq_ticket_reviews_step"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    chain: Mapped[str] = mapped_column(String(80))
    round: Mapped[int] = mapped_column(Integer, default=1)
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    approver: Mapped[str] = mapped_column(String(120))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    delegated_to: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="waiting")
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    timeout: Mapped[str | None] = mapped_column(String(40), nullable=True)
    on_timeout: Mapped[str] = mapped_column(String(12), default="reject")


from engine.db import connector_models as _connector  # noqa: E402,F401
from engine.db import failure_models as _failures  # noqa: E402,F401
from engine.db import growth_models as _growth  # noqa: E402,F401
from engine.db import loyalty_models as _loyalty  # noqa: E402,F401
from engine.db import people_models as _people  # noqa: E402,F401
from engine.db import policy_models as _policies  # noqa: E402,F401
from engine.db import quarantine_models as _quarantine  # noqa: E402,F401
from engine.db import sidebar_models as _sidebar  # noqa: E402,F401
from engine.db import workforce_models as _workforce  # noqa: E402,F401
