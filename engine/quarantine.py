"""The quarantine: what kept failing, kept with its reason, visible and re-drivable — never in the way.

Three kinds of work land here after :data:`engine.events.MAX_ATTEMPTS` failures of their own (an unreachable
Temporal or database is not the work's fault and is retried without counting):

* ``event`` — an event the router could not route (e.g. a payload that breaks a trigger filter). The event
  row stays stored with status ``quarantined``; re-driving puts it back to ``received`` and routes it.
* ``ticket_start`` — a ticket whose workflow could not be started (``start_pending`` skips it meanwhile).
* ``push`` — a verified connector delivery whose mapped event is not a valid event. Re-driving validates the
  (possibly fixed) event again and stores it like any other event of that connector.

An operator lists entries (``GET /api/quarantine``, or the page ``/quarantine``), fixes an event's payload
(``PUT …/payload``) and sends it again (``POST …/redrive``); a re-drive that fails again stays in the quarantine
with the new error. The API and the page call the same functions here (:func:`check_payload`,
:func:`fix_payload`, :func:`redrive`, :func:`drop`); each change is audited with what it was before and after.
An entry's error is kept as a ``Msg`` (``wording.stored``): the page shows it in the reader's language, the API
in English (:func:`describe`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import bounded_json
from engine.db.models import utcnow
from engine.db.quarantine_models import QuarantineEntry
from engine.expressions import CostLimitExceeded, ExpressionTooCostly
from engine.pii import mask_text
from engine.read_policy import Reader, mask_value, sees_pii
from engine.settings import get_settings
from engine.text import CAUGHT, CAUGHT_SILENT, Msg, MsgError, caught, message_of
from wording.stored import MAX_REASON, read_stored, stored, stored_english, stored_msg

log = logging.getLogger(__name__)
KINDS = ("event", "ticket_start", "push")
STATUSES = ("open", "redriven", "dropped")


class QuarantineError(MsgError):
    """An operator's request on the quarantine that cannot be done (unknown entry, wrong state, bad payload)."""

    def __init__(self, status: int, message: Msg, fix: Msg, field: str = "id") -> None:
        super().__init__(message, fix, field, status)


class AttemptFailed(Exception):
    """Doing the work again failed; the message is the reason as recorded (already short and masked)."""


def reason(exc: BaseException) -> Msg:
    """What went wrong, safe to show (no personal data): the exception's type and its message
    (:func:`wording.caught`, the sentence a connector's failed poll says too), a ``Msg`` when it was raised with
    one (so it is kept translatable, :func:`put`), phones and card numbers masked in its values. The type is a
    value of its own, so :func:`error_kind` reads what the error is, not its words."""
    if isinstance(exc, AttemptFailed):
        return message_of(exc)
    return caught(exc, _masked(message_of(exc)) if str(exc) else None)


def _masked(message: Msg) -> Msg:
    """``message`` with every text value masked (``engine.pii.mask_text``); the template is ours, never personal."""
    if not message.values:
        return message
    return Msg(message.template, **{name: _masked(value) if isinstance(value, Msg) else
                                    mask_text(value) if isinstance(value, str) else value
                                    for name, value in message.values.items()})


def kept(error: str | None) -> str:
    """``error`` — a ``Msg``, the stored form of one (an event row's error), or plain text — as an entry keeps it."""
    return stored(read_stored(error or ""), MAX_REASON)


def put(db: Session, kind: str, ref: str, error: str, payload: dict[str, Any], attempts: int = 1,
        now: datetime | None = None) -> QuarantineEntry:
    """Quarantine ``ref`` (or update its open entry) in the caller's transaction. ``error`` is a ``Msg``, its stored
    form or plain text (words that are not ours, shown as they are)."""
    now = now or utcnow()
    error = kept(error)
    entry = db.scalar(select(QuarantineEntry).where(QuarantineEntry.kind == kind, QuarantineEntry.ref == ref,
                                                    QuarantineEntry.status == "open"))
    if entry is None:
        entry = QuarantineEntry(kind=kind, ref=ref, status="open", attempts=attempts, error=error, payload=payload,
                                created_at=now, updated_at=now)
        db.add(entry)
    else:  # failed again (after a re-drive): the latest error counts
        entry.attempts, entry.error, entry.payload, entry.updated_at = entry.attempts + 1, error, payload, now
    db.flush()
    log.warning("quarantined %s %s after %d attempts: %s", kind, ref, attempts, stored_english(error)[:200])
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


def counts_by_kind(db: Session, status: str | None = "open") -> dict[str, int]:
    """How many entries of each kind there are (with ``status``, or all)."""
    query = select(QuarantineEntry.kind, func.count()).group_by(QuarantineEntry.kind)
    if status:
        query = query.where(QuarantineEntry.status == status)
    return {str(k): int(n) for k, n in db.execute(query)}


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
        raise QuarantineError(404, Msg("quarantine entry %(id)s does not exist", id=entry_id),
                              Msg("list the entries with GET /api/quarantine"))
    if entry.status != "open":
        raise QuarantineError(409, Msg("quarantine entry %(id)s is %(status)s, not open", id=entry_id,
                                       status=entry.status),
                              Msg("only open entries can be changed or sent again"), "status")
    return entry


def _limits() -> bounded_json.Limits:
    return bounded_json.Limits.from_settings(get_settings().max_event_bytes, "TIDEFLOW_MAX_EVENT_BYTES")


def _refused(exc: bounded_json.InputRejected, field: str = "payload") -> QuarantineError:
    fix = (Msg("make the payload smaller or flatter (the limit is %(setting)s)", setting=exc.setting)
           if exc.setting else Msg("fix the payload"))
    reason = str(exc).replace("the body", "the payload")
    return QuarantineError(422 if exc.status == 400 else exc.status,
                           Msg("the payload is refused: %(reason)s", reason=reason), fix, field)


def check_payload(payload: Any) -> dict[str, Any]:
    """``payload`` if it may replace an event's payload: a JSON object within the entrance's limits (size
    ``TIDEFLOW_MAX_EVENT_BYTES``, depth, string length — the limits ``/api/events`` applies); else a
    :class:`QuarantineError` (422 or 413) naming the field and the fix."""
    import json

    if not isinstance(payload, dict):
        raise QuarantineError(422, Msg("the payload must be a JSON object ({…}), not %(type)s",
                                       type=type(payload).__name__),
                              Msg('write the payload as an object, e.g. {"order_id": "O-1"}'), "payload")
    limits = _limits()
    try:
        bounded_json.check_value(payload, limits)
        bounded_json.check_size(len(json.dumps(payload, ensure_ascii=False, default=str).encode()), limits)
    except bounded_json.InputRejected as exc:
        raise _refused(exc) from None
    return payload


def parse_payload(text: str) -> dict[str, Any]:
    """A payload written as JSON text (the page's editor), parsed within the entrance's limits and checked
    by :func:`check_payload`; a syntax error names its line and column."""
    try:
        value = bounded_json.parse(text, _limits())
    except bounded_json.InputRejected as exc:
        if exc.syntax:
            raise QuarantineError(422, Msg("the payload is not valid JSON: %(reason)s",
                                           reason=str(exc).split(": ", 1)[-1]),
                                  Msg("fix the JSON at that place (quotes around keys and texts, commas between "
                                      "items, no comma after the last one)"), "payload") from None
        raise _refused(exc) from None
    return check_payload(value)


def fix_payload(db: Session, entry_id: int, payload: dict[str, Any], actor: str) -> QuarantineEntry:
    """Replace the event payload of an open ``event`` or ``push`` entry (and of the stored event)."""
    from engine.db import models

    check_payload(payload)
    entry = get_open(db, entry_id)
    if entry.kind == "ticket_start":
        raise QuarantineError(422, Msg("a ticket start has no payload to fix"),
                              Msg("fix the ticket or its flow, then send it again"), "kind")
    before = entry.payload.get("payload")
    entry.payload = {**entry.payload, "payload": payload}
    entry.updated_at = utcnow()
    if entry.kind == "event":
        source, external_id = entry.ref.split(":", 1)
        row = db.scalar(select(models.EventRecord).where(models.EventRecord.source == source,
                                                         models.EventRecord.external_id == external_id))
        if row is not None:
            row.payload = payload
    from engine.auth import audit

    audit(db, actor, "quarantine.fixed", f"quarantine:{entry.id}", {"kind": entry.kind, "ref": entry.ref},
          before={"payload": shallow(before)}, after={"payload": shallow(payload)})
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
        raise QuarantineError(503, Msg("%(kind)s entries cannot be sent again from this process right now",
                                       kind=entry.kind),
                              Msg("try again in a moment (Temporal may be unreachable)"), "kind")
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
                    was = {"attempts": entry.attempts, "error": stored_english(entry.error)}
                    # the work may have recorded its failure itself (the router puts a failing event back
                    # into its open entry): one re-drive is one attempt, counted once
                    counted = row.attempts > entry.attempts
                    row.attempts, row.updated_at = row.attempts + (0 if counted else 1), utcnow()
                    row.error = kept(error)
                    audit(db, actor, "quarantine.redrive_failed", f"quarantine:{entry_id}",
                          {"kind": row.kind, "ref": row.ref}, before=was,
                          after={"attempts": row.attempts, "error": str(error)})

        await asyncio.to_thread(failed)
        raise QuarantineError(409, Msg("sending quarantine entry %(id)s again failed: %(error)s", id=entry_id,
                                       error=error),
                              Msg("fix the cause (the payload, or the flow), then send it again"),
                              "payload") from None

    def done() -> QuarantineEntry:
        with transaction(database_url) as db:
            row = db.get(QuarantineEntry, entry_id)
            assert row is not None
            was = row.status
            row.status, row.redriven_at, row.redriven_by, row.updated_at = "redriven", utcnow(), actor, utcnow()
            audit(db, actor, "quarantine.redriven", f"quarantine:{entry_id}",
                  {"kind": row.kind, "ref": row.ref, "started": list(outcome.get("started") or [])},
                  before={"status": was},
                  after={"status": row.status})
            db.flush()
            db.expunge(row)
            return row

    return await asyncio.to_thread(done), outcome


def drop(db: Session, entry_id: int, actor: str) -> QuarantineEntry:
    """An operator gives up on an entry: it leaves the open list (and is kept as ``dropped``)."""
    from engine.auth import audit

    entry = get_open(db, entry_id)
    was = entry.status
    entry.status, entry.updated_at = "dropped", utcnow()
    audit(db, actor, "quarantine.dropped", f"quarantine:{entry.id}", {"kind": entry.kind, "ref": entry.ref},
          before={"status": was}, after={"status": entry.status})
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


def describe(entry: QuarantineEntry, reader: Reader | None = None) -> dict[str, Any]:
    """An entry as ``reader`` may see it (engine/read_policy.py): the payload holds the customer's identities
    and profile, so a role that sees personal data masked gets it masked (admins read it in clear)."""
    payload = shallow(entry.payload)
    if reader is not None and not sees_pii(reader):
        payload = mask_value(payload)
    return {"id": entry.id, "kind": entry.kind, "ref": entry.ref, "status": entry.status,
            "attempts": entry.attempts, "error": read_stored(entry.error), "payload": payload,
            "pii_masked": reader is not None and not sees_pii(reader),
            "created_at": entry.created_at.isoformat(), "updated_at": entry.updated_at.isoformat(),
            "redriven_at": entry.redriven_at.isoformat() if entry.redriven_at else None,
            "redriven_by": entry.redriven_by}


#: what an entry's error means, for the page to say in words (the raw error is shown beside it)
ERROR_KINDS = ("too_deep", "invalid_event", "not_startable", "too_costly", "other")
#: what an error means when an exception of this class caused it (:func:`reason` records the class's name)
CAUSES: dict[type[BaseException], str] = {
    RecursionError: "too_deep",
    ExpressionTooCostly: "too_costly",
    CostLimitExceeded: "too_costly",
}
_CAUSE_NAMES = {cause.__name__: meaning for cause, meaning in CAUSES.items()}
#: what an error means otherwise, by the kind of entry (a push is quarantined because its event is not valid)
_BY_KIND = {"push": "invalid_event", "ticket_start": "not_startable"}


def error_kind(kind: str, error: str) -> str:
    """Which of :data:`ERROR_KINDS` ``error`` (of an entry of ``kind``, as stored) is: by the exception that caused
    it (:data:`CAUSES`, its class as :func:`reason` recorded it), else by the entry's kind — never by its words,
    which a platform's or a customer's text may fill with anything. An error saved as plain text (before the
    stored form, ``wording.stored``) is read from its English, as it was then (:func:`_legacy_kind`)."""
    message = stored_msg(error)
    if message is None:
        return _legacy_kind(kind, error)
    cause = message.values.get("error") if message.template in (CAUGHT, CAUGHT_SILENT) else None
    if isinstance(cause, str) and cause in _CAUSE_NAMES:
        return _CAUSE_NAMES[cause]
    return _BY_KIND.get(kind, "other")


def _legacy_kind(kind: str, text: str) -> str:
    """:func:`error_kind` of an error saved as plain English: what its words say (only for rows written before)."""
    text = text.lower()
    if "recursion" in text or "nested deeper" in text or "too deep" in text:
        return "too_deep"
    if "too costly" in text or ("operations" in text and "simplify" in text):
        return "too_costly"
    if kind == "push" or "not a valid event" in text or "unknown event type" in text:
        return "invalid_event"
    if kind == "ticket_start":
        return "not_startable"
    return "other"
