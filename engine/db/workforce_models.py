"""Workforce and compliance tables (DESIGN §8): WeCom staff, handovers, customer groups, mass sends, the
conversation archive and sensitive words. Classes on :class:`engine.db.models.Base`; their migration is
engine/migrations/versions/0009_workforce_tables.py. docs/workforce.md explains the area.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow

BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class WorkforceSettings(Base):
    """Per WeCom connector: the corp's mass-message allowance, handover defaults, compliance alerts."""

    __tablename__ = "workforce_settings"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: month_days (WeCom's default) | week_7 | day_1 — the corp's setting in 群发助手 › 设置群发规则
    mass_quota_policy: Mapped[str] = mapped_column(String(20), default="month_days")
    #: recipients at the limit: exclude them, or defer them to when they may receive again
    at_limit: Mapped[str] = mapped_column(String(10), default="exclude")
    #: start the handover plan's execution when WeCom says a member left (else an admin executes it)
    auto_handover: Mapped[bool] = mapped_column(default=False)
    default_strategy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    transfer_success_msg: Mapped[str] = mapped_column(String(200), default="")
    #: staff who get compliance alerts when a member has no direct leader
    default_auditors: Mapped[list[Any]] = mapped_column(default=list)
    archive_enabled: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeComStaff(Base):
    """A WeCom member (成员) as Tideflow knows them, linked to a Tideflow user when they work tickets."""

    __tablename__ = "wecom_staff"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    departments: Mapped[list[Any]] = mapped_column(default=list)
    #: direct leaders (user/get ``direct_leader``): who gets this member's compliance alerts
    leaders: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active, resigned
    resigned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_active_at: Mapped[datetime | None] = mapped_column(nullable=True)
    customer_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Handover(Base):
    """One handover of a member's customers and groups: planned, then executed by a workflow.

    Its id names its workflow (``handover/<id>``, started REJECT_DUPLICATE), yet the table needs no AUTOINCREMENT,
    unlike ``mass_sends``: SQLite hands out a used id again only when the row holding the largest id is gone, and
    no handover row ever goes — nothing deletes from ``handovers`` (a handover ends ``done``, ``cancelled`` or
    ``failed`` and stays, its items refer to it, and removing a connector leaves them). An insert rolled back
    before its commit frees its id, but nothing was named by it: the workflow is started only for a committed,
    ``planned`` handover read back from the table (``runtime.start_handover``), and no message-log key or other
    id is built from a handover id (its items' ids name nothing). Should handovers ever be deleted (a retention
    purge), give the table ``sqlite_autoincrement`` first, as migration 0018 did for ``mass_sends``."""

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80), index=True)
    handover_userid: Mapped[str] = mapped_column(String(64), index=True)
    #: resigned (离职继承) | onjob (在职转接)
    mode: Mapped[str] = mapped_column(String(10))
    strategy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: planned, running, waiting (for takeovers), done, cancelled, failed
    status: Mapped[str] = mapped_column(String(12), default="planned", index=True)
    trigger: Mapped[str] = mapped_column(String(20), default="admin")  # admin, callback, api
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    transfer_success_msg: Mapped[str] = mapped_column(String(200), default="")
    workflow_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class HandoverItem(Base):
    """One customer or group of a handover: where it goes and how far it got."""

    __tablename__ = "handover_items"
    __table_args__ = (UniqueConstraint("handover_id", "kind", "external_id", name="uq_handover_items"),
                      Index("ix_handover_items_status", "handover_id", "status"),
                      Index("ix_handover_items_external", "kind", "external_id", "sent_at"))
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handovers.id"))
    kind: Mapped[str] = mapped_column(String(10))  # customer, group
    external_id: Mapped[str] = mapped_column(String(120))
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    takeover_userid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: planned, blocked, sent (call made, takeover pending), done, refused, limit_reached, failed, cancelled
    status: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    errcode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    movable_from: Mapped[datetime | None] = mapped_column(nullable=True)
    day: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    takeover_at: Mapped[datetime | None] = mapped_column(nullable=True)
    final_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the staff member's work moved with the customer (tickets, pending messages, journeys)
    work_moved: Mapped[bool] = mapped_column(default=False)


class WeComGroup(Base):
    """A customer group (客户群) as last synced from groupchat/get."""

    __tablename__ = "wecom_groups"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    owner_userid: Mapped[str] = mapped_column(String(64), default="", index=True)
    notice: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="active")  # active, dismissed
    created_at: Mapped[datetime | None] = mapped_column(nullable=True)
    member_version: Mapped[str] = mapped_column(String(80), default="")
    members_count: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WeComGroupMember(Base):
    """A current member of a customer group (type 1 staff, 2 external contact)."""

    __tablename__ = "wecom_group_members"
    __table_args__ = (Index("ix_wecom_group_members_customer", "customer_id"),)
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    userid: Mapped[str] = mapped_column(String(120), primary_key=True)
    type: Mapped[int] = mapped_column(Integer, default=2)
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    join_time: Mapped[datetime | None] = mapped_column(nullable=True)
    join_scene: Mapped[int] = mapped_column(Integer, default=0)


class MassSend(Base):
    """An enterprise mass send (企业群发): to customers through their owning staff, or to groups.

    Its id names its workflow (``mass-send/<id>``) and its message-log rows (``mass/<id>/<recipient>``), so an id
    is never handed out twice, not even after the send was withdrawn (``mass_sends.withdraw``): SQLite needs
    AUTOINCREMENT for that (without it the newest row's id is reused once the row is deleted; migration 0018),
    PostgreSQL's sequence never reuses one."""

    __tablename__ = "mass_sends"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80), index=True)
    chat_type: Mapped[str] = mapped_column(String(10))  # single, group
    name: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    #: the audience: {"expression": …, "tags_any": […], "groups": […]} (single) or {"chat_ids": […]} (group)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quota_policy: Mapped[str] = mapped_column(String(20), default="month_days")
    at_limit: Mapped[str] = mapped_column(String(10), default="exclude")
    #: draft, sending (waiting for staff confirmation / results), done, cancelled, failed
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    workflow_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    flow_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: senders who have not confirmed by then are reminded, then the send is closed
    deadline: Mapped[datetime | None] = mapped_column(nullable=True)


class MassSendTask(Base):
    """One sender's WeCom task of a mass send (one add_msg_template call)."""

    __tablename__ = "mass_send_tasks"
    __table_args__ = (UniqueConstraint("mass_send_id", "sender", "batch", name="uq_mass_send_tasks"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mass_send_id: Mapped[int] = mapped_column(ForeignKey("mass_sends.id"), index=True)
    sender: Mapped[str] = mapped_column(String(64))
    batch: Mapped[int] = mapped_column(Integer, default=0)
    msgid: Mapped[str | None] = mapped_column(String(120), nullable=True)
    #: pending (not created yet), waiting (for the sender's confirmation), sent, cancelled, failed
    status: Mapped[str] = mapped_column(String(12), default="pending")
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MassSendRecipient(Base):
    """One recipient (customer or group) of a mass send and their outcome."""

    __tablename__ = "mass_send_recipients"
    __table_args__ = (Index("ix_mass_send_recipients_recipient", "connector_id", "recipient", "sent_at"),)
    mass_send_id: Mapped[int] = mapped_column(ForeignKey("mass_sends.id"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(120), primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(80))
    sender: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: queued, waiting (in a sender's task), requeued, skipped: at limit, deferred, not_sent, sent, not_friend,
    #: already_received, failed, cancelled
    status: Mapped[str] = mapped_column(String(24), default="queued")
    deferred_until: Mapped[datetime | None] = mapped_column(nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: counted against the recipient's allowance (queued or sent by Tideflow) at this time
    counted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class MassSendRequest(Base):
    """What a flow's ``action.wecom_mass_send`` made under one idempotency key: the mass send and recipient, and
    how to tell the flow when the outcome is in (wake the journey, or resume the broadcast customer)."""

    __tablename__ = "mass_send_requests"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    mass_send_id: Mapped[int] = mapped_column(ForeignKey("mass_sends.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(120))
    customer_id: Mapped[str] = mapped_column(String(40))
    #: journey (a workflow to wake) or broadcast (a customer parked at the node, to resume)
    mode: Mapped[str] = mapped_column(String(10))
    workflow_id: Mapped[str] = mapped_column(String(300))
    flow_id: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(80))
    #: broadcasts: the run's key and the customer's journey variables when parked
    run_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: when the flow was told the outcome (journey woken, broadcast customer resumed)
    notified_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArchiveKey(Base):
    """A private key of the conversation archive, by ``publickey_ver``: encrypted at rest (engine/secrets)."""

    __tablename__ = "archive_keys"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArchiveCursor(Base):
    """How far the archive has been pulled (GetChatData ``seq``): moved only after a page is stored."""

    __tablename__ = "archive_cursors"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pulled: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArchivedMessage(Base):
    """One archived chat message (staff ↔ customer, or a group chat), text masked."""

    __tablename__ = "archived_messages"
    __table_args__ = (UniqueConstraint("connector_id", "msgid", name="uq_archived_messages_msgid"),
                      Index("ix_archived_messages_customer", "customer_id", "msgtime"),
                      Index("ix_archived_messages_staff", "staff_userid", "msgtime"),
                      Index("ix_archived_messages_room", "roomid", "msgtime"))
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80))
    msgid: Mapped[str] = mapped_column(String(120))
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(12), default="send")
    sender: Mapped[str] = mapped_column(String(120), default="")
    tolist: Mapped[list[Any]] = mapped_column(default=list)
    roomid: Mapped[str] = mapped_column(String(120), default="")
    msgtype: Mapped[str] = mapped_column(String(40), default="")
    #: staff (a member wrote), customer (an external contact wrote), internal
    direction: Mapped[str] = mapped_column(String(10), default="staff")
    staff_userid: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    msgtime: Mapped[datetime] = mapped_column(default=utcnow)
    #: stored, undecryptable (kept encrypted until its key is added)
    status: Mapped[str] = mapped_column(String(16), default="stored")
    encrypted: Mapped[dict[str, Any]] = mapped_column(default=dict)
    media: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SensitiveWordList(Base):
    """A team's list of sensitive words with its scope."""

    __tablename__ = "sensitive_word_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(80), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: staff, customer or both: whose messages the words apply to
    direction: Mapped[str] = mapped_column(String(10), default="both")
    departments: Mapped[list[Any]] = mapped_column(default=list)
    members: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SensitiveWord(Base):
    __tablename__ = "sensitive_words"
    __table_args__ = (UniqueConstraint("list_id", "kind", "pattern", name="uq_sensitive_words"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("sensitive_word_lists.id", ondelete="CASCADE"), index=True)
    pattern: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="keyword")  # keyword, regex
    severity: Mapped[str] = mapped_column(String(10), default="medium")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SensitiveHit(Base):
    """A sensitive word or behaviour found: who, where, the passage, the alert and the compliance ticket."""

    __tablename__ = "sensitive_hits"
    __table_args__ = (UniqueConstraint("connector_id", "msgid", "rule", name="uq_sensitive_hits"),
                      Index("ix_sensitive_hits_team_at", "team", "at"),
                      Index("ix_sensitive_hits_staff_at", "staff_userid", "at"))
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80))
    #: the archived message's msgid, or the event id of a behaviour seen in an event
    msgid: Mapped[str] = mapped_column(String(160))
    #: word:<id> or behaviour:<kind>
    rule: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))  # word, behaviour
    list_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    word: Mapped[str] = mapped_column(String(200), default="")
    severity: Mapped[str] = mapped_column(String(10), default="medium")
    team: Mapped[str] = mapped_column(String(80), default="")
    direction: Mapped[str] = mapped_column(String(10), default="staff")
    staff_userid: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    passage: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    #: pending, sent, skipped: …, failed: …
    alert: Mapped[str] = mapped_column(String(60), default="pending")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupQrCode(Base):
    """A group QR code (客户群「加入群聊」) for welcome messages: the join way and its image URL."""

    __tablename__ = "wecom_group_qr_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80), index=True)
    name: Mapped[str] = mapped_column(String(120))
    config_id: Mapped[str] = mapped_column(String(120))
    chat_ids: Mapped[list[Any]] = mapped_column(default=list)
    qr_code: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(30), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
