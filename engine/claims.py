"""Routing claims: who holds an event for routing, until when, and whether it is still alive.

The process that stores events routes them right away, so it claims them (``claimed_until`` = now +
:data:`CLAIM`, ``claimed_by`` = its :class:`Holder`) in the transaction that stores them; so do the re-router
(:func:`engine.events.pending`), a follow-up event's store and the requeue of a quarantined event. The re-router
only takes events whose claim has lapsed (:func:`lapsed`):

- past ``claimed_until`` (60 s): the outer bound, whoever holds it;
- or held by a holder whose heartbeat (table ``claim_holders``) is older than :data:`HOLDER_STALE` (10 s): it
  died (killed mid-routing), and its events are taken over within seconds instead of a minute;
- a claim whose holder has no heartbeat row (``claimed_by`` NULL, or a process of an older version) keeps the
  ``claimed_until`` rule alone.

A holder proves it is alive for as long as it may hold claims (:data:`CLAIM` after its last one): the
transactions that claim events or write routing outcomes carry its heartbeat when one is due (at most one a
second, no extra transaction under load), and its routing pipeline writes it on a thread of its own every
:data:`HOLDER_BEAT_SECONDS` when nothing else did — routing that is held up (Temporal unreachable for minutes)
does not delay the beat, so a slow but live holder's claims are never taken over. A claim is never written
beside a stale heartbeat: the claiming transaction writes the beat first when the last one committed is not
fresh. A process that stops releases its claims (:func:`release`) and its heartbeat row.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.db import models
from engine.db.models import utcnow
from engine.db.quarantine_models import ClaimHolder
from engine.db.session import transaction

#: how long a router's claim on the events it routes holds before the re-router may take them over
CLAIM = timedelta(seconds=60)
#: how often a process holding claims writes its heartbeat (when no claim or outcome it wrote carried one)
HOLDER_BEAT_SECONDS = 1.0
#: a holder whose heartbeat is older than this is dead: its claims count as lapsed. Ten beats: a live holder's
#: beat is written in a thread of its own, so slow routing (Temporal unreachable) never delays it; what could
#: is its database being unwritable that long, or clocks of hosts sharing a database apart by that much
HOLDER_STALE = timedelta(seconds=10)
#: heartbeats of holders silent this long are deleted (a restarted process has a new id; its claims lapsed)
HOLDER_FORGET = timedelta(hours=1)
#: where a session keeps the holders whose heartbeat its transaction wrote, noted as beaten once it commits
_BEATS = "tideflow.holder_beats"


class Holder:
    """A process that claims events to route them, as its claims name it (``claimed_by``). While it holds claims
    (for :data:`CLAIM` after its last one) its heartbeat must stay fresh: the transactions that claim events or
    write outcomes carry it when one is due (:func:`beat`), and its routing pipeline writes it every
    :data:`HOLDER_BEAT_SECONDS` when none did (:func:`write_beat`)."""

    def __init__(self, process: str) -> None:
        self.process = process[:120]
        #: monotonic times: the start of the last transaction that wrote the heartbeat and committed, the start of
        #: the last one that wrote it at all, and until when a claim of this holder may be held
        self.beaten_at = -math.inf
        self.tried_at = -math.inf
        self.holding_until = -math.inf

    def claiming(self) -> None:
        self.holding_until = max(self.holding_until, time.monotonic() + CLAIM.total_seconds())

    def holds(self) -> bool:
        return time.monotonic() < self.holding_until

    def due(self) -> bool:
        """Whether the next transaction of this holder writes its heartbeat: one is due every
        :data:`HOLDER_BEAT_SECONDS`; one being written lets the others skip only while the last one committed is
        still far from stale (a claim is never committed beside a heartbeat that is stale already)."""
        now = time.monotonic()
        if now - self.beaten_at < HOLDER_BEAT_SECONDS:
            return False
        return not (now - self.tried_at < HOLDER_BEAT_SECONDS
                    and now - self.beaten_at < HOLDER_STALE.total_seconds() / 2)


def beat(db: Session, holder: Holder | None, force: bool = False) -> None:
    """Write ``holder``'s heartbeat in the caller's transaction when one is due (or ``force``)."""
    if holder is None or not (force or holder.due()):
        return
    started = holder.tried_at = time.monotonic()
    table = ClaimHolder.__table__
    assert isinstance(table, Table)
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    db.execute(insert(table).values(process=holder.process, alive_at=now)
               .on_conflict_do_update(index_elements=["process"], set_={"alive_at": now}))
    db.info.setdefault(_BEATS, []).append((holder, started))


@event.listens_for(Session, "after_commit")
def _beaten(session: Session) -> None:
    if session.get_nested_transaction() is None:
        for holder, started in session.info.pop(_BEATS, ()):
            holder.beaten_at = max(holder.beaten_at, started)


@event.listens_for(Session, "after_rollback")
def _not_beaten(session: Session) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_BEATS, None)


def claimed_by(db: Session, holder: Holder | None) -> str | None:
    """The ``claimed_by`` of a claim ``holder`` makes in the caller's transaction (its heartbeat written with it
    when due); None without a holder (the claim then only lapses with ``claimed_until``)."""
    if holder is None:
        return None
    holder.claiming()
    beat(db, holder)
    return holder.process


def write_beat(database_url: str | None, holder: Holder) -> None:
    """``holder``'s heartbeat in a transaction of its own; heartbeats silent past :data:`HOLDER_FORGET` go."""
    with transaction(database_url) as db:
        beat(db, holder, force=True)
        db.execute(delete(ClaimHolder).where(ClaimHolder.alive_at < utcnow() - HOLDER_FORGET))


def release(database_url: str | None, holder: Holder) -> int:
    """A holder that stops: its claims on events not routed yet are released (the re-router takes them at its next
    pass) and its heartbeat deleted. Returns how many claims were released."""
    with transaction(database_url) as db:
        released = db.execute(update(models.EventRecord).where(
            models.EventRecord.claimed_by == holder.process, models.EventRecord.status == "received")
            .values(claimed_until=None, claimed_by=None))
        db.execute(delete(ClaimHolder).where(ClaimHolder.process == holder.process))
    holder.holding_until = holder.beaten_at = -math.inf
    return int(getattr(released, "rowcount", 0) or 0)


def lapsed(now: datetime) -> ColumnElement[bool]:
    """Events whose claim has lapsed (or that nobody claims): past ``claimed_until``, or held by a holder whose
    heartbeat is stale (it died). A holder without a heartbeat row keeps the ``claimed_until`` rule."""
    dead = select(ClaimHolder.process).where(ClaimHolder.alive_at < now - HOLDER_STALE)
    return (models.EventRecord.claimed_until.is_(None) | (models.EventRecord.claimed_until < now)
            | models.EventRecord.claimed_by.in_(dead))


def dead_holder(db: Session, process: str | None, now: datetime) -> bool:
    """Whether ``process`` is a holder whose heartbeat is stale (see :func:`lapsed`)."""
    return process is not None and db.scalar(select(ClaimHolder.process).where(
        ClaimHolder.process == process, ClaimHolder.alive_at < now - HOLDER_STALE)) is not None
