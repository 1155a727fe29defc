"""Event ingestion: validate, store once, resolve the customer — then the router takes over.

An event is stored before it is acknowledged and before anything acts on it, so
an accepted event is never lost: if routing fails (Temporal unreachable), the
event stays ``received`` and :func:`pending` hands it to the re-router. A
redelivery (same ``source`` and ``id``) is stored once and reported as
``duplicate``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.customers import IdentityError, check_kind, normalise, resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.event_hooks import run_hooks
from engine.event_types import INTERNAL_TYPES, SeenType, explain_unknown, is_known


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


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
            raise ValueError(f"'{value}' events are produced by Tideflow itself (loyalty, referral campaigns) "
                             "and cannot be sent in; send the event that causes them (e.g. order.paid)")
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
                raise ValueError(str(exc)) from None
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2026-11-23T10:00:00+08:00")
        return value


def signal_payload(row: models.EventRecord) -> dict[str, Any]:
    """The event as journeys see it (``event.payload.amount`` in expressions)."""
    return {"id": f"{row.source}:{row.external_id}", "type": row.type, "source": row.source,
            "customer_id": row.customer_id, "occurred_at": row.occurred_at.astimezone(UTC).isoformat(),
            "payload": row.payload}


def store(event: EventIn, database_url: str | None = None) -> tuple[str, dict[str, Any], bool]:
    """Store one event (once) and resolve its customer.

    Returns (``accepted`` | ``duplicate``, the event as journeys see it, whether it still needs routing).
    """
    for attempt in range(3):
        try:
            with transaction(database_url) as db:
                found = db.scalar(select(models.EventRecord).where(
                    models.EventRecord.source == event.source, models.EventRecord.external_id == event.id))
                if found is not None:
                    return "duplicate", signal_payload(found), found.status != "routed"
                profile = event.profile or Profile()
                customer_id = resolve(db, event.customer, profile.name, profile.attributes)
                if profile.timezone:
                    customer = db.get(models.Customer, customer_id)
                    if customer is not None:
                        customer.timezone = profile.timezone
                row = models.EventRecord(
                    source=event.source, external_id=event.id, type=event.type, customer_id=customer_id,
                    identities={k: str(v) for k, v in event.customer.items()}, payload=event.payload,
                    occurred_at=event.occurred_at or utcnow(), status="received",
                )
                db.add(row)
                db.flush()
                run_hooks(db, row)
                return "accepted", signal_payload(row), True
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def record_follow_up(db: Any, *, source: str, external_id: str, type: str, customer_id: str,
                     payload: dict[str, Any], occurred_at: datetime | None = None) -> bool:
    """Store an event Tideflow itself produces (``loyalty.points_earned``, ``referral.progress`` …) in the
    caller's transaction, so it exists exactly when the change that caused it does.

    It is stored ``received``; the re-router (:func:`pending`) routes it to flows like any other event.
    ``(source, external_id)`` is its idempotency key: a second call with the same pair stores nothing
    and returns False. Event hooks do not run for follow-up events."""
    found = db.scalar(select(models.EventRecord.id).where(models.EventRecord.source == source,
                                                         models.EventRecord.external_id == external_id))
    if found is not None:
        return False
    try:
        with db.begin_nested():
            db.add(models.EventRecord(source=source, external_id=external_id[:120], type=type, customer_id=customer_id,
                                      identities={"customer_id": customer_id}, payload=payload,
                                      occurred_at=occurred_at or utcnow(), status="received"))
            db.flush()
    except IntegrityError:
        return False
    return True


def mark_routed(source_and_id: str, database_url: str | None = None, error: str | None = None) -> None:
    source, external_id = source_and_id.split(":", 1)
    with transaction(database_url) as db:
        values: dict[str, Any] = {"error": error} if error else {"status": "routed", "routed_at": utcnow(),
                                                                  "error": None}
        db.execute(update(models.EventRecord).where(models.EventRecord.source == source,
                                                    models.EventRecord.external_id == external_id).values(**values))


def pending(database_url: str | None = None, older_than_seconds: float = 5, limit: int = 500) -> list[dict[str, Any]]:
    """Events stored but not yet routed (routing failed or the process died in between)."""
    cutoff = datetime.fromtimestamp(utcnow().timestamp() - older_than_seconds, UTC)
    with session_factory(database_url)() as db:
        rows = db.scalars(select(models.EventRecord).where(models.EventRecord.status == "received",
                                                           models.EventRecord.received_at <= cutoff)
                          .order_by(models.EventRecord.id).limit(limit)).all()
        return [signal_payload(r) for r in rows]


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
