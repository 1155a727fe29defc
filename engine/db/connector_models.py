"""Tables of the connectors' operations: messages a connector could not map (kept raw, never dropped) and
each connector's sync state (last sync, last error) beside its cursors (``connector_cursors``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class UnmappedMessage(Base):
    """A signed, well-formed message from a platform that maps to no Tideflow event (an unknown type or
    status). ``key`` dedupes the platform's redeliveries (its message id, else a digest of the raw text);
    ``deliveries`` counts them."""

    __tablename__ = "connector_unmapped_messages"
    __table_args__ = (UniqueConstraint("connector_id", "key", name="uq_connector_unmapped_key"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    connector_id: Mapped[str] = mapped_column(String(80), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(80), default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    deliveries: Mapped[int] = mapped_column(default=1)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectorSyncState(Base):
    """How a polled connector's syncing goes: the last attempt, the last success and the last error."""

    __tablename__ = "connector_sync_states"
    connector_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resync_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
