"""The workspace's send policy (one row): the cross-flow frequency cap on promotional messages and the
quiet hours that apply to flows which set none. Edited by admins on the messaging settings page; read by
the policy gate (:mod:`engine.policies`) on every send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class SendPolicyRow(Base):
    __tablename__ = "send_policies"
    id: Mapped[str] = mapped_column(String(20), primary_key=True, default="workspace")
    #: at most this many promotional messages per customer within cap_window, across flows; None: no cap
    cap_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cap_window: Mapped[str] = mapped_column(String(40), default="P7D")
    #: quiet hours (local HH:MM) for flows that set none; None: no default quiet hours
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
