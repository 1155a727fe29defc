"""The quarantine: what kept failing, kept with its reason, visible and re-drivable — never in the way.

Three kinds of work land here after :data:`engine.events.MAX_ATTEMPTS` failures of their own (an unreachable
Temporal or database is not the work's fault and is retried without counting):

* ``event`` — an event the router could not route (e.g. a payload that breaks a trigger filter). The event
  row stays stored with status ``quarantined``; re-driving puts it back to ``received`` and routes it.
* ``ticket_start`` — a ticket whose workflow could not be started (``start_pending`` skips it meanwhile).
* ``push`` — a verified connector delivery whose mapped event is not a valid event. Re-driving validates the
  (possibly fixed) event again and stores it like any other event of that connector.

An operator lists entries (``GET /api/quarantine``), fixes an event's payload (``PUT …/payload``) and sends
it again (``POST …/redrive``); a re-drive that fails again stays in the quarantine with the new error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db.models import utcnow
from engine.db.quarantine_models import QuarantineEntry
from engine.pii import mask_text

log = logging.getLogger(__name__)
KINDS = ("event", "ticket_start", "push")
STATUSES = ("open", "redriven", "dropped")


class QuarantineError(ValueError):
    """An operator's request on the quarantine that cannot be done (unknown entry, wrong state, bad payload)."""

    def __init__(self, status: int, message: str, fix: str, field: str = "id") -> None:
        super().__init__(message)
        self.status, self.message, self.fix, self.field = status, message, fix, field


class AttemptFailed(Exception):
    """Doing the work again failed; the message is the reason as recorded (already short and masked)."""


def reason(exc: BaseException) -> str:
    """What went wrong, short and safe to show (no personal data)."""
    if isinstance(exc, AttemptFailed):
        return str(exc)[:2000]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return mask_text(text)[:2000]


def put(db: Session, kind: str, ref: str, error: str, payload: dict[str, Any], attempts: int = 1,
        now: datetime | None = None) -> QuarantineEntry:
    """Quarantine ``ref`` (or update its open entry) in the caller's transaction."""
    now = now or utcnow()
    entry = db.scalar(select(QuarantineEntry).where(QuarantineEntry.kind == kind, QuarantineEntry.ref == ref,
                                                    QuarantineEntry.status == "open"))
    if entry is None:
        entry = QuarantineEntry(kind=kind, ref=ref, status="open", attempts=attempts, error=error, payload=payload,
                                created_at=now, updated_at=now)
        db.add(entry)
    else:  # failed again (after a re-drive): the latest error counts
        entry.attempts, entry.error, entry.payload, entry.updated_at = entry.attempts + 1, error, payload, now
    db.flush()
    log.warning("quarantined %s %s after %d attempts: %s", kind, ref, attempts, error[:200])
    return entry


def open_refs(db: Session, kind: str, among: list[str] | None = None) -> set[str]:
    """Refs of ``kind`` with an open entry (only those in ``among``, when given)."""
    query = select(QuarantineEntry.ref).where(QuarantineEntry.kind == kind, QuarantineEntry.status == "open")
    if among is not None:
        query = query.where(QuarantineEntry.ref.in_(among))
    return set(db.scalars(query))


@dataclass
class Page:
    entries: list[QuarantineEntry]
    total: int
    by_status: dict[str, int]


def listing(db: Session, kind: str | None = None, status: str | None = "open", limit: int = 100,
            offset: int = 0) -> Page:
    query = select(QuarantineEntry)
    count = select(func.count()).select_from(QuarantineEntry)
    if kind:
        query, count = query.where(QuarantineEntry.kind == kind), count.where(QuarantineEntry.kind == kind)
    grouped = select(QuarantineEntry.status, func.count()).group_by(QuarantineEntry.status)
    if kind:
        grouped = grouped.where(QuarantineEntry.kind == kind)
    by_status = {str(s): int(n) for s, n in db.execute(grouped)}
    if status:
        query, count = query.where(QuarantineEntry.status == status), count.where(QuarantineEntry.status == status)
    entries = list(db.scalars(query.order_by(QuarantineEntry.id.desc()).limit(limit).offset(offset)))
    return Page(entries, int(db.scalar(count) or 0), by_status)


def get_open(db: Session, entry_id: int) -> QuarantineEntry:
    entry = db.get(QuarantineEntry, entry_id)
    if entry is None:
        raise QuarantineError(404, f"quarantine entry {entry_id} does not exist",
                              "list the entries with GET /api/quarantine")
    if entry.status != "open":
        raise QuarantineError(409, f"quarantine entry {entry_id} is {entry.status}, not open",
                              "only open entries can be changed or sent again", "status")
    return entry


def fix_payload(db: Session, entry_id: int, payload: dict[str, Any], actor: str) -> QuarantineEntry:
    """Replace the event payload of an open ``event`` or ``push`` entry (and of the stored event)."""
    from engine.db import models

    entry = get_open(db, entry_id)
    if entry.kind == "ticket_start":
        raise QuarantineError(422, "a ticket start has no payload to fix", "fix the ticket or its flow, then "
                              "send it again", "kind")
    entry.payload = {**entry.payload, "payload": payload}
    entry.updated_at = utcnow()
    if entry.kind == "event":
        source, external_id = entry.ref.split(":", 1)
        row = db.scalar(select(models.EventRecord).where(models.EventRecord.source == source,
                                                         models.EventRecord.external_id == external_id))
        if row is not None:
            row.payload = payload
    from engine.auth import audit

    audit(db, actor, "quarantine.fixed", f"quarantine:{entry.id}", {"kind": entry.kind, "ref": entry.ref})
    return entry


#: how a re-drive does the work again, by kind: given the entry, raise on failure (the caller records it)
Redriver = Callable[[QuarantineEntry], Awaitable[dict[str, Any]]]


async def redrive(database_url: str | None, entry_id: int, actor: str, redrivers: dict[str, Redriver]
                  ) -> tuple[QuarantineEntry, dict[str, Any]]:
    """Do the work of an open entry again. Success closes it (``redriven``); a failure keeps it open with the
    new error and raises :class:`QuarantineError` (409) saying so."""
    import asyncio

    from engine.auth import audit
    from engine.db.session import session_factory, transaction

    def load() -> QuarantineEntry:
        with session_factory(database_url)() as db:
            entry = get_open(db, entry_id)
            db.expunge(entry)
            return entry

    entry = await asyncio.to_thread(load)
    run = redrivers.get(entry.kind)
    if run is None:
        raise QuarantineError(503, f"{entry.kind} entries cannot be sent again from this process right now",
                              "try again in a moment (Temporal may be unreachable)", "kind")
    try:
        outcome = await run(entry)
    except QuarantineError:
        raise
    except Exception as exc:
        error = reason(exc)

        def failed() -> None:
            with transaction(database_url) as db:
                row = db.get(QuarantineEntry, entry_id)
                if row is not None:
                    row.attempts, row.error, row.updated_at = row.attempts + 1, error, utcnow()
                    audit(db, actor, "quarantine.redrive_failed", f"quarantine:{entry_id}", {"kind": row.kind})

        await asyncio.to_thread(failed)
        raise QuarantineError(409, f"sending quarantine entry {entry_id} again failed: {error}",
                              "fix the cause (the payload with PUT …/payload, or the flow), then send it again",
                              "payload") from None

    def done() -> QuarantineEntry:
        with transaction(database_url) as db:
            row = db.get(QuarantineEntry, entry_id)
            assert row is not None
            row.status, row.redriven_at, row.redriven_by, row.updated_at = "redriven", utcnow(), actor, utcnow()
            audit(db, actor, "quarantine.redriven", f"quarantine:{entry_id}", {"kind": row.kind, "ref": row.ref})
            db.flush()
            db.expunge(row)
            return row

    return await asyncio.to_thread(done), outcome


def drop(db: Session, entry_id: int, actor: str) -> QuarantineEntry:
    """An operator gives up on an entry: it leaves the open list (and is kept as ``dropped``)."""
    from engine.auth import audit

    entry = get_open(db, entry_id)
    entry.status, entry.updated_at = "dropped", utcnow()
    audit(db, actor, "quarantine.dropped", f"quarantine:{entry.id}", {"kind": entry.kind, "ref": entry.ref})
    return entry


#: levels of a payload shown in listings (a poison payload may be nested hundreds deep)
SHOWN_DEPTH = 32


def shallow(value: Any, depth: int = SHOWN_DEPTH) -> Any:
    """``value`` with everything below ``depth`` levels replaced by a note (iterative: no recursion limit)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any] | dict[Any, Any], Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, key, level = stack.pop()
        if isinstance(item, dict | list) and level >= depth:
            parent[key] = f"… ({type(item).__name__} nested deeper than {depth} levels, not shown)"
        elif isinstance(item, dict):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            stack.extend((v, copy, k, level + 1) for k, v in item.items())
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((v, items, i, level + 1) for i, v in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def describe(entry: QuarantineEntry) -> dict[str, Any]:
    return {"id": entry.id, "kind": entry.kind, "ref": entry.ref, "status": entry.status,
            "attempts": entry.attempts, "error": entry.error, "payload": shallow(entry.payload),
            "created_at": entry.created_at.isoformat(), "updated_at": entry.updated_at.isoformat(),
            "redriven_at": entry.redriven_at.isoformat() if entry.redriven_at else None,
            "redriven_by": entry.redriven_by}
