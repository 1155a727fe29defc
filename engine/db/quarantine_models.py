"""The quarantine: work that kept failing (an event the router cannot route, a ticket whose workflow cannot
be started, a connector push that maps to no valid event), kept with its error so an operator can see it,
fix it and send it again — while everything behind it keeps flowing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db.base import Base, utcnow


class QuarantineEntry(Base):
    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: event (routing failed), ticket_start (its workflow could not be started), push (a connector delivery
    #: that maps to an invalid event)
    kind: Mapped[str] = mapped_column(String(20))
    #: what it is about: ``<source>:<id>`` of an event, ``ticket:<id>``, ``<connector id>:<n>`` of a push
    ref: Mapped[str] = mapped_column(String(200))
    #: open (waiting for an operator), redriven (sent again and done), dropped (an operator gave up on it)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    #: what is sent again: the event as journeys see it, or the mapped push event (operators may fix it)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    redriven_at: Mapped[datetime | None]
    redriven_by: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (Index("ix_quarantine_kind_ref", "kind", "ref"),)


class WorkerLag(Base):
    """Each worker's worst event → action latency lately, and how many such actions it completes per second
    (admission control reads them)."""

    __tablename__ = "worker_lag"

    worker: Mapped[str] = mapped_column(String(120), primary_key=True)
    lag_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: first actions after an event it completed per second, lately
    done_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebHeartbeat(Base):
    """Each web process that admitted events lately, and when it last sampled the workers' lag: admission
    counts the fresh ones and each admits its share of the workers' capacity (engine.admission.share)."""

    __tablename__ = "web_heartbeat"

    process: Mapped[str] = mapped_column(String(120), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimHolder(Base):
    """Each process that holds claims on events (``events.claimed_by``), and when it last said it is alive: the
    re-router takes over the claims of a holder whose heartbeat is stale (it died) without waiting for them to
    lapse (engine.events.HOLDER_STALE)."""

    __tablename__ = "claim_holders"

    process: Mapped[str] = mapped_column(String(120), primary_key=True)
    alive_at: Mapped[datetime] = mapped_column(default=utcnow)
