"""Event ingestion: validate, store once, resolve the customer — then the router takes over.

An event is stored before it is acknowledged and before anything acts on it, so
an accepted event is never lost: if routing fails (Temporal unreachable), the
event stays ``received`` and :func:`pending` hands it to the re-router. A
redelivery (same ``source`` and ``id``) is stored once and reported as
``duplicate``.

A request's (or a push's) events are stored in one transaction: all of them or
none. The process that stores them claims them for a while (``claimed_until``)
because it routes them right away; the re-router only takes events whose claim
has lapsed (that process died or gave up), and claims them first, so two routers
do not route one event at the same time. A claim names its holder, whose heartbeat shows it alive: a dead
holder's claims count as lapsed within seconds (:mod:`engine.claims`). An event whose routing fails for a
reason of its own (not an unreachable Temporal or database) is counted; at
:data:`MAX_ATTEMPTS` it goes to the quarantine (:mod:`engine.quarantine`) and the
events behind it keep flowing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import follow_ups
from engine.claims import CLAIM, Holder, claimed_by, dead_holder, lapsed
from engine.customers import IdentityError, check_kind, normalise, resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.event_hooks import run_hooks
from engine.event_types import INTERNAL_TYPES, SeenType, explain_unknown, is_known
from engine.text import Msg
from engine.zones import check_zone


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class EventIn(BaseModel):
    """One event as sent to ``POST /api/events`` or produced by a connector."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=120, description="your id for this event; redeliveries share it")
    type: str = Field(min_length=3, max_length=120, examples=["order.paid"])
    source: str = Field(default="api", pattern=r"^[a-z][a-z0-9_\-]{0,59}$")
    customer: dict[str, str | int] = Field(
        min_length=1, description="identities: phone, email, wecom_external_userid, wechat_openid, "
                                  "wechat_unionid, <shop>_buyer, external_id or customer_id")
    profile: Profile | None = None
    occurred_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if not is_known(value):
            raise ValueError(explain_unknown(value))
        if value in INTERNAL_TYPES:
            raise ValueError(Msg("'%(type)s' events are produced by Tideflow itself (loyalty, referral campaigns) "
                                 "and cannot be sent in; send the event that causes them (e.g. order.paid)",
                                 type=value))
        return value

    @field_validator("customer")
    @classmethod
    def _identities(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        for kind, ident in value.items():
            try:
                check_kind(kind)
                if kind != "customer_id":
                    normalise(kind, ident)
            except IdentityError as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(Msg("needs a timezone, e.g. 2026-11-23T10:00:00+08:00"))
        if value is not None:
            try:  # stored in UTC: 0001-01-01T00:00:00+14:00 has no UTC time
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError(
                    Msg("is outside the range of times that can be stored (years 1–9999 in UTC)")) from None
        return value


def signal_payload(row: models.EventRecord) -> dict[str, Any]:
    """The event as journeys see it (``event.payload.amount`` in expressions)."""
    return {"id": f"{row.source}:{row.external_id}", "type": row.type, "source": row.source,
            "customer_id": row.customer_id, "occurred_at": row.occurred_at.astimezone(UTC).isoformat(),
            "received_at": (row.received_at or utcnow()).astimezone(UTC).isoformat(), "payload": row.payload}


#: routing attempts (failures of the event itself) before it is quarantined
MAX_ATTEMPTS = 3


@dataclass
class Stored:
    """One event of a request after storing: its answer, the event as journeys see it, and its row id."""

    status: str  # accepted | duplicate
    payload: dict[str, Any]
    needs_routing: bool
    row_id: int
    received_at: datetime


def _store_one(db: Any, event: EventIn, claim_until: datetime | None, claim_by: str | None) -> Stored:
    found = db.scalar(select(models.EventRecord).where(
        models.EventRecord.source == event.source, models.EventRecord.external_id == event.id))
    if found is not None:
        # a redelivery of an event not routed yet: route it now, unless a live router holds it
        now = utcnow()
        free = found.status == "received" and (found.claimed_until is None or found.claimed_until < now
                                               or dead_holder(db, found.claimed_by, now))
        if free and claim_until is not None:  # claimed only if still free: a re-router may be claiming it now
            taken = db.execute(update(models.EventRecord).where(
                models.EventRecord.id == found.id, models.EventRecord.status == "received", lapsed(now))
                .values(claimed_until=claim_until, claimed_by=claim_by)
                .execution_options(synchronize_session=False))
            free = bool(getattr(taken, "rowcount", 0))
        return Stored("duplicate", signal_payload(found), free, found.id, found.received_at)
    profile = event.profile or Profile()
    # the new customer and identities are written with the event row: one flush for the three
    customer_id = resolve(db, event.customer, profile.name, profile.attributes, flush=False)
    if profile.timezone:
        customer = db.get(models.Customer, customer_id)
        if customer is not None:
            customer.timezone = profile.timezone
    row = models.EventRecord(
        source=event.source, external_id=event.id, type=event.type, customer_id=customer_id,
        identities={k: str(v) for k, v in event.customer.items()}, payload=event.payload,
        occurred_at=event.occurred_at or utcnow(), status="received", claimed_until=claim_until,
        claimed_by=claim_by, attempts=0,
    )
    db.add(row)
    db.flush()
    run_hooks(db, row)
    return Stored("accepted", signal_payload(row), True, row.id, row.received_at)


def store_many(events: list[EventIn], database_url: str | None = None, claim: bool = False,
               holder: Holder | None = None) -> list[Stored]:
    """Store a request's events (each once) and resolve their customers, in one transaction: all or none.

    With ``claim``, the events that need routing are claimed for :data:`CLAIM` (the caller routes them now), in
    the name of ``holder``.
    """
    for attempt in range(3):
        try:
            with transaction(database_url) as db:
                until = utcnow() + CLAIM if claim else None
                by = claimed_by(db, holder) if claim else None
                return [_store_one(db, event, until, by) for event in events]
        except IntegrityError:  # another process stored the same event or identity meanwhile: look again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def store_and_hand_on(events: list[EventIn], database_url: str | None = None) -> list[Stored]:
    """Store events that arrive outside an ingestion request (a workforce sync, a survey answer) in one
    transaction and, when this process routes on commit (:mod:`engine.follow_ups`), claim the ones that need
    routing and hand them to its routing pipeline — with the follow-ups their hooks stored right after them.
    Otherwise the re-router routes them."""
    holder = follow_ups.holder_here(database_url)
    at_once = follow_ups.routes_here(database_url)
    with follow_ups.held() as caused:
        stored = store_many(events, database_url, claim=at_once, holder=holder if at_once else None)
    todo = [s.row_id for s in stored if s.needs_routing] if at_once else []
    if todo or caused:  # routed in id order: each event before the follow-ups it caused
        follow_ups.dispatch(database_url, [*todo, *caused])
    return stored


def store(event: EventIn, database_url: str | None = None) -> tuple[str, dict[str, Any], bool]:
    """Store one event (once) and resolve its customer.

    Returns (``accepted`` | ``duplicate``, the event as journeys see it, whether it still needs routing).
    """
    one = store_many([event], database_url)[0]
    return one.status, one.payload, one.needs_routing


def _split(source_and_id: str) -> tuple[str, str]:
    source, external_id = source_and_id.split(":", 1)
    return source, external_id


def record_follow_up(db: Any, *, source: str, external_id: str, type: str, customer_id: str,
                     payload: dict[str, Any], occurred_at: datetime | None = None) -> bool:
    """Store an event Tideflow itself produces (``loyalty.points_earned``, ``referral.progress`` …) in the
    caller's transaction, so it exists exactly when the change that caused it does.

    It is stored ``received``. When this process routes follow-ups (:mod:`engine.follow_ups`: a web process
    or a worker installed its routing pipeline) it is stored claimed and routed as soon as the caller's
    transaction commits; otherwise the re-router (:func:`pending`) routes it within seconds.
    ``(source, external_id)`` is its idempotency key: a second call with the same pair stores nothing
    and returns False. Event hooks do not run for follow-up events."""
    found = db.scalar(select(models.EventRecord.id).where(models.EventRecord.source == source,
                                                         models.EventRecord.external_id == external_id))
    if found is not None:
        return False
    router = follow_ups.router_for(db)
    at_once = router is not None
    row = models.EventRecord(source=source, external_id=external_id[:120], type=type, customer_id=customer_id,
                             identities={"customer_id": customer_id}, payload=payload,
                             occurred_at=occurred_at or utcnow(), status="received",
                             claimed_until=utcnow() + CLAIM if at_once else None,
                             claimed_by=claimed_by(db, router.holder) if router is not None else None)
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        return False
    if at_once:
        follow_ups.note(db, row.id)
    return True


def stored_unrouted(database_url: str | None, row_ids: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """The events of these rows still waiting for routing (``received``), as journeys see them, in id order —
    what committed of the follow-up events a transaction noted (:mod:`engine.follow_ups`)."""
    with session_factory(database_url)() as db:
        rows = db.scalars(select(models.EventRecord).where(models.EventRecord.id.in_(row_ids),
                                                           models.EventRecord.status == "received")
                          .order_by(models.EventRecord.id)).all()
        return [(r.id, signal_payload(r)) for r in rows]


def mark_routed(source_and_id: str, database_url: str | None = None, error: str | None = None) -> None:
    """One event's routing outcome: routed, or (with ``error``) left for the re-router, claim released."""
    source, external_id = _split(source_and_id)
    with transaction(database_url) as db:
        values: dict[str, Any] = ({"error": error, "claimed_until": None, "claimed_by": None} if error else
                                  {"status": "routed", "routed_at": utcnow(), "error": None, "claimed_until": None,
                                   "claimed_by": None})
        db.execute(update(models.EventRecord).where(models.EventRecord.source == source,
                                                    models.EventRecord.external_id == external_id).values(**values))


@dataclass
class Outcome:
    """How routing one event went, as :func:`record_outcomes` writes it."""

    row_id: int
    #: routed | deferred (the infrastructure failed: retried later, not counted) | failed (the event failed)
    kind: str
    error: str | None = None
    payload: dict[str, Any] | None = None


def record_outcomes(db: Any, outcomes: Iterable[Outcome], now: datetime | None = None) -> list[int]:
    """Write routing outcomes in the caller's transaction. Returns the row ids that went to the quarantine."""
    from engine import quarantine

    now = now or utcnow()
    routed = [o.row_id for o in outcomes if o.kind == "routed"]
    for start in range(0, len(routed), 500):
        db.execute(update(models.EventRecord).where(models.EventRecord.id.in_(routed[start:start + 500]))
                   .values(status="routed", routed_at=now, error=None, claimed_until=None, claimed_by=None))
    quarantined: list[int] = []
    for o in outcomes:
        if o.kind == "routed":
            continue
        row = db.get(models.EventRecord, o.row_id)
        if row is None or row.status != "received":
            continue
        row.claimed_until = row.claimed_by = None
        row.error = quarantine.kept(o.error)  # a Msg kept translatable (wording.stored), clipped to fit
        if o.kind == "failed":
            row.attempts = (row.attempts or 0) + 1
            ref = f"{row.source}:{row.external_id}"
            if row.attempts >= MAX_ATTEMPTS or ref in quarantine.open_refs(db, "event", [ref]):
                row.status = "quarantined"
                quarantine.put(db, "event", ref, row.error, signal_payload(row), attempts=row.attempts, now=now)
                quarantined.append(row.id)
    return quarantined


def pending(database_url: str | None = None, older_than_seconds: float = 5, limit: int = 500,
            claim: bool = False, holder: Holder | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Events stored but not yet routed (routing failed or the process died in between) whose claim has
    lapsed (:func:`lapsed`): (row id, the event as journeys see it), oldest first. With ``claim`` they are
    claimed for :data:`CLAIM` in the same transaction, in the name of ``holder`` (the caller routes them now)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    query = (select(models.EventRecord).where(
        models.EventRecord.status == "received", models.EventRecord.received_at <= cutoff, lapsed(now))
        .order_by(models.EventRecord.id).limit(limit))
    if not claim:
        with session_factory(database_url)() as db:
            return [(r.id, signal_payload(r)) for r in db.scalars(query).all()]
    with transaction(database_url) as db:
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = db.scalars(query).all()
        by = claimed_by(db, holder) if rows else None
        for r in rows:
            r.claimed_until, r.claimed_by = now + CLAIM, by
        return [(r.id, signal_payload(r)) for r in rows]


def requeue(database_url: str | None, source_and_id: str, holder: Holder | None = None
            ) -> tuple[int, dict[str, Any]]:
    """Put a quarantined event back for routing (attempts reset, claimed by the caller — ``holder`` —, who routes
    it now): (row id, the event as journeys see it)."""
    source, external_id = _split(source_and_id)
    with transaction(database_url) as db:
        row = db.scalar(select(models.EventRecord).where(models.EventRecord.source == source,
                                                         models.EventRecord.external_id == external_id))
        if row is None:
            raise LookupError(Msg("event %(ref)s is no longer stored", ref=source_and_id))
        if row.status == "quarantined":
            row.status, row.attempts = "received", 0
        row.claimed_until, row.claimed_by = utcnow() + CLAIM, claimed_by(db, holder)
        return row.id, signal_payload(row)


#: how many of the newest events :func:`seen_types` counts (the busiest types lately, cheaply)
SEEN_WINDOW = 10_000


def seen_types(db: Session, window: int = SEEN_WINDOW) -> dict[str, SeenType]:
    """The event types in the events table: every distinct type (read from the type index), with how
    many of the newest ``window`` events had it, when it came last and from which sources."""
    from sqlalchemy import func

    newest = (select(models.EventRecord.type, models.EventRecord.source, models.EventRecord.received_at)
              .order_by(models.EventRecord.id.desc()).limit(window).subquery())
    counted: dict[str, SeenType] = {}
    rows = db.execute(select(newest.c.type, newest.c.source, func.count(), func.max(newest.c.received_at))
                      .group_by(newest.c.type, newest.c.source))
    for kind, source, count, last in rows:
        before = counted.get(kind, SeenType())
        when = max((t for t in (before.last, last) if t is not None), default=None)
        counted[kind] = SeenType(before.count + int(count), when, tuple(sorted({*before.sources, str(source)})))
    for (kind,) in db.execute(select(models.EventRecord.type).distinct()):
        counted.setdefault(kind, SeenType())
    return counted
