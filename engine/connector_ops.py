"""What operators see and do about a configured connector beyond its settings: the messages it could not
map (kept raw, counted, never dropped), its sync status (last sync, cursors, backlog, last error), a
resync, and forgetting all of it when the connector is deleted.

The connector side says *what* is unmapped (``connectors.base.Unmapped``); this module stores it. The
engine knows connectors only through their configuration rows and entry points, never by import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import connectors as configured
from engine.db import models
from engine.db.connector_models import ConnectorSyncState, UnmappedMessage
from engine.db.models import utcnow
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory, transaction
from engine.text import Msg, MsgError
from wording.stored import MAX_REASON, read_stored, stored

#: the raw text kept per unmapped message (the hook already bounds a body to 1 MiB)
MAX_RAW = 64 * 1024


def _key(connector_id: str, message_id: str, raw: str) -> str:
    basis = f"id:{message_id}" if message_id else f"raw:{raw}"
    return hashlib.sha256(f"{connector_id}\n{basis}".encode()).hexdigest()


def store_unmapped(database_url: str | None, connector_id: str, items: Iterable[Any]) -> int:
    """Keep each unmapped message (``connectors.base.Unmapped``) once; a redelivery counts a delivery more.
    Returns how many were new."""
    new = 0
    for item in items:
        raw = str(item.raw)[:MAX_RAW]
        key = _key(connector_id, str(item.message_id), raw)
        for attempt in range(2):
            try:
                with transaction(database_url) as db:
                    row = db.scalar(select(UnmappedMessage).where(UnmappedMessage.connector_id == connector_id,
                                                                  UnmappedMessage.key == key))
                    if row is not None:
                        row.deliveries += 1
                        row.last_received_at = utcnow()
                    else:
                        db.add(UnmappedMessage(connector_id=connector_id, key=key, kind=str(item.kind)[:80],
                                               message_id=str(item.message_id)[:200],
                                               reason=stored(item.reason, MAX_REASON),
                                               raw=raw))
                        new += 1
                break
            except IntegrityError:  # a concurrent redelivery inserted it first: count this one on it
                if attempt:
                    raise
    return new


@dataclass
class UnmappedView:
    id: int
    kind: str
    message_id: str
    #: why it maps to no event: a Msg (English in the API, translated on the page)
    reason: Msg
    raw: str
    deliveries: int
    received_at: datetime
    last_received_at: datetime


def unmapped(db: Session, connector_id: str, *, limit: int = 50, before_id: int | None = None
             ) -> tuple[int, dict[str, int], list[UnmappedView]]:
    """(total count, count per kind, the newest ``limit`` messages, older than ``before_id`` when given)."""
    table = UnmappedMessage
    total = db.scalar(select(func.count()).select_from(table).where(table.connector_id == connector_id)) or 0
    by_kind = {str(kind): int(n) for kind, n in db.execute(
        select(table.kind, func.count()).where(table.connector_id == connector_id).group_by(table.kind))}
    query = select(table).where(table.connector_id == connector_id)
    if before_id is not None:
        query = query.where(table.id < before_id)
    rows = db.scalars(query.order_by(table.id.desc()).limit(limit))
    return int(total), by_kind, [UnmappedView(r.id, r.kind, r.message_id, read_stored(r.reason), r.raw, r.deliveries,
                                              r.received_at, r.last_received_at) for r in rows]


# -- sync status -----------------------------------------------------------------------------------------


def record_attempt(database_url: str | None, connector_id: str, *, error: str | None = None,
                   summary: dict[str, Any] | None = None) -> None:
    """Write down one sync attempt: its summary when it succeeded, its error (one line, no secrets: the
    connectors' errors never carry them) when it failed — both when it succeeded in part (the windows were
    read but the message queue failed). The error is kept as a ``Msg`` (``wording.stored``: its values clipped
    to :data:`wording.stored.MAX_REASON`), so the connector page shows it in the reader's language."""
    now = utcnow()
    with transaction(database_url) as db:
        row = db.get(ConnectorSyncState, connector_id)
        if row is None:
            row = ConnectorSyncState(connector_id=connector_id, last_summary={})
            db.add(row)
        row.last_attempt_at = now
        if summary is not None or error is None:
            row.last_success_at = now
            row.last_summary = dict(summary or {})
            row.last_error = None
        if error is not None:
            row.last_error, row.last_error_at = stored(error, MAX_REASON), now


@dataclass
class CursorView:
    stream: str
    position: datetime
    updated_at: datetime
    #: how far the cursor is behind now (the polled backlog), in whole seconds
    behind_seconds: int


@dataclass
class SyncStatus:
    connector_id: str
    kind: str
    polled: bool
    enabled: bool
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    #: read back as the Msg it was saved as: English in the API's JSON, translated on the page (``said``)
    last_error: Msg | None = None
    last_error_at: datetime | None = None
    last_summary: dict[str, Any] = field(default_factory=dict)
    resync_requested_at: datetime | None = None
    cursors: list[CursorView] = field(default_factory=list)
    #: events from this connector stored but not yet routed to journeys
    unrouted_events: int = 0
    #: events from this connector that failed routing and wait for the re-router
    routing_errors: int = 0
    last_event_at: datetime | None = None
    unmapped_messages: int = 0
    #: this connector's work waiting in the quarantine (its events routing kept failing for, its invalid
    #: pushes) — shown with a link to /quarantine
    quarantined: int = 0

def is_polled(connector: Any) -> bool:
    """Whether a connector (class or instance) is polled for orders (has ``poll_window`` and ``streams``)."""
    return callable(getattr(connector, "poll_window", None)) and bool(getattr(connector, "streams", ()))

def restart_from(database_url: str | None, connector_id: str, position: datetime) -> None:
    """Put every cursor of a connector at ``position`` (also backwards): skip a long gap on purpose, or read
    a period again (re-read events are duplicates)."""
    with transaction(database_url) as db:
        rows = {r.stream: r for r in db.scalars(select(models.ConnectorCursor).where(
            models.ConnectorCursor.connector_id == connector_id))}
        loaded = configured.load(db, connector_id)
        streams = set(rows) | set(getattr(loaded.connector, "streams", ()) if loaded else ())
        for stream in streams:
            row = rows.get(stream)
            if row is None:
                db.add(models.ConnectorCursor(connector_id=connector_id, stream=stream, position=position,
                                              updated_at=utcnow()))
            else:
                row.position, row.updated_at = position, utcnow()


def _polled(kind: str) -> bool:
    cls = configured.connector_classes().get(kind)
    return cls is not None and is_polled(cls)


def sync_status(db: Session, connector_id: str, now: datetime | None = None) -> SyncStatus | None:
    """The connector's sync status; None when it is not configured."""
    config = db.get(models.ConnectorConfig, connector_id)
    if config is None:
        return None
    moment = now or utcnow()
    status = SyncStatus(connector_id=connector_id, kind=config.kind, polled=_polled(config.kind),
                        enabled=config.enabled)
    state = db.get(ConnectorSyncState, connector_id)
    if state is not None:
        status.last_attempt_at, status.last_success_at = state.last_attempt_at, state.last_success_at
        status.last_error, status.last_error_at = read_stored(state.last_error), state.last_error_at
        status.last_summary, status.resync_requested_at = dict(state.last_summary or {}), state.resync_requested_at
    for cursor in db.scalars(select(models.ConnectorCursor).where(models.ConnectorCursor.connector_id == connector_id)
                             .order_by(models.ConnectorCursor.stream)):
        behind = max(0, int((moment - cursor.position).total_seconds()))
        status.cursors.append(CursorView(cursor.stream, cursor.position, cursor.updated_at, behind))
    events = models.EventRecord
    status.unrouted_events = int(db.scalar(select(func.count()).select_from(events).where(
        events.source == connector_id, events.status == "received")) or 0)
    status.routing_errors = int(db.scalar(select(func.count()).select_from(events).where(
        events.source == connector_id, events.status == "received", events.error.is_not(None))) or 0)
    status.last_event_at = db.scalar(select(func.max(events.received_at)).where(events.source == connector_id))
    status.unmapped_messages = int(db.scalar(select(func.count()).select_from(UnmappedMessage).where(
        UnmappedMessage.connector_id == connector_id)) or 0)
    status.quarantined = int(db.scalar(select(func.count()).select_from(QuarantineEntry).where(
        QuarantineEntry.status == "open", QuarantineEntry.kind.in_(("event", "push")),
        QuarantineEntry.ref.startswith(f"{connector_id}:", autoescape=True))) or 0)
    return status


class ResyncError(MsgError):
    """A resync that cannot be done as asked (not configured, not polled, a start in the future)."""


def resync(database_url: str | None, connector_id: str, since: datetime | None = None,
           now: datetime | None = None) -> datetime:
    """Read a polled connector again from ``since`` (default: its configured backfill, at least one hour
    back): every cursor goes there, and the next poll re-reads from it. Re-read records are duplicates the
    event store drops, so nothing is counted twice. Returns the position the cursors were put at."""
    moment = now or utcnow()
    with session_factory(database_url)() as db:
        loaded = configured.load(db, connector_id)
        if db.get(models.ConnectorConfig, connector_id) is None:
            raise ResyncError(Msg("no connector '%(connector_id)s'", connector_id=connector_id))
    if loaded is None:
        raise ResyncError(Msg("connector '%(connector_id)s' is disabled or its kind is not "
                              "installed; enable it first",
                              connector_id=connector_id))
    if not _polled(loaded.kind):
        raise ResyncError(Msg("connector '%(connector_id)s' (%(kind)s) is pushed, not polled: the "
                              "platform resends what was not acknowledged; re-route its stored "
                              "events instead",
                              connector_id=connector_id, kind=loaded.kind))
    if since is None:
        since = moment - max(timedelta(hours=1), loaded.connector.backfill(loaded.settings))
    if since.tzinfo is None:
        raise ResyncError(Msg("since needs a time zone, e.g. 2026-11-23T00:00:00+08:00"))
    if since > moment:
        raise ResyncError(Msg("since is in the future; give a time in the past"))
    restart_from(database_url, connector_id, since)
    with transaction(database_url) as db:
        state = db.get(ConnectorSyncState, connector_id)
        if state is None:
            db.add(ConnectorSyncState(connector_id=connector_id, last_summary={}, resync_requested_at=moment))
        else:
            state.resync_requested_at = moment
    return since


def forget(db: Session, connector_id: str) -> None:
    """Remove what a deleted connector leaves behind: its cursors, its sync state and its unmapped messages
    (its stored events stay: they belong to customers and journeys now)."""
    db.execute(delete(models.ConnectorCursor).where(models.ConnectorCursor.connector_id == connector_id))
    db.execute(delete(ConnectorSyncState).where(ConnectorSyncState.connector_id == connector_id))
    db.execute(delete(UnmappedMessage).where(UnmappedMessage.connector_id == connector_id))
