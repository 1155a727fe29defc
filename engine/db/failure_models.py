"""Why a journey failed: the failing node, the error in words and the attempts, read once from Temporal's
history (:mod:`engine.journey_failures`) and kept here, so the failure list filters on them and the reason
outlives Temporal's retention of the history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class JourneyFailure(Base):
    """The failure of one journey's latest run (one row per journey; a retry removes it)."""

    __tablename__ = "journey_failures"
    __table_args__ = (Index("ix_journey_failures_flow_node", "flow_id", "node_id"),)
    workflow_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(80))
    #: the node that failed (None when the history does not say)
    node_id: Mapped[str | None] = mapped_column(String(80))
    node_type: Mapped[str | None] = mapped_column(String(120))
    #: action (an activity out of retries or refused for good), logic (an expression), engine (the workflow itself)
    kind: Mapped[str] = mapped_column(String(20))
    error: Mapped[str] = mapped_column(Text)
    #: how many times the node was tried
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
