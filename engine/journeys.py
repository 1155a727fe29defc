"""Journey bookkeeping done by local activities: checkpoints (status + batched node statistics)
and the customer snapshot expressions see; and, from outside the workflow, asking a journey to cancel."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from engine import auth
from engine.action_context import Services
from engine.customers import customer_view
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.runtime import Checkpoint
from wording.stored import MAX_REASON, read_stored, stored

TERMINAL = frozenset({"completed", "converted", "exited", "failed", "cancelled"})
ACTIVE = frozenset({"running", "waiting"})


def add_stats(db: Session, flow_id: str, version: int, deltas: list[list[Any]]) -> None:
    """Add counter deltas ([node, metric, port, delta]) with one upsert per distinct counter."""
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for node, metric, port, delta in deltas:
        totals[(str(node), str(metric), str(port or ""))] += int(delta)
    if not totals:
        return
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = models.NodeStat.__table__
    assert isinstance(table, Table)
    for (node, metric, port), delta in sorted(totals.items()):
        if delta == 0:
            continue
        stmt = insert(table).values(flow_id=flow_id, version=version, node_id=node, metric=metric, port=port,
                                    count=delta)
        stmt = stmt.on_conflict_do_update(index_elements=["flow_id", "version", "node_id", "metric", "port"],
                                          set_={"count": table.c.count + delta})
        db.execute(stmt)


def apply_checkpoint(db: Session, cp: Checkpoint) -> None:
    """The journey's status and node statistics, in the caller's transaction (which guards it by a key)."""
    now = utcnow()
    journey = db.get(models.Journey, cp.workflow_id)
    if journey is None:
        journey = models.Journey(workflow_id=cp.workflow_id, flow_id=cp.flow_id, version=cp.version,
                                 customer_id=cp.customer_id, status=cp.status, started_at=now, checkpoint=0)
        db.add(journey)
    if journey.status not in TERMINAL or cp.status in TERMINAL:
        journey.status = cp.status
    journey.current_node = cp.node
    journey.updated_at = now
    journey.checkpoint = (journey.checkpoint or 0) + 1
    if cp.status in TERMINAL and journey.ended_at is None:
        journey.ended_at = now
    if cp.error:  # a stored Msg (wording.stored) or, from a run that failed before, English: clip values, not text
        journey.error = stored(read_stored(cp.error), MAX_REASON)
    add_stats(db, cp.flow_id, cp.version, cp.stats)


def record_checkpoint(cp: Checkpoint, database_url: str | None = None) -> bool:
    """Write one checkpoint exactly once (by key). Returns False when it was already written."""
    try:
        with transaction(database_url) as db:
            if db.get(models.LedgerEntry, cp.key) is not None:
                return False
            db.add(models.LedgerEntry(key=cp.key, kind="checkpoint", result={}))
            apply_checkpoint(db, cp)
        return True
    except IntegrityError:
        return False


class JourneyActivities:
    """The journey's local activities, bound to one worker's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @activity.defn(name="journey.checkpoint")
    def checkpoint(self, cp: Checkpoint) -> bool:
        return record_checkpoint(cp, self.services.database_url)

    @activity.defn(name="journey.customer")
    def customer(self, customer_id: str) -> dict[str, Any]:
        with session_factory(self.services.database_url)() as db:
            return customer_view(db, customer_id)


def running_journeys(db: Session, customer_id: str) -> list[str]:
    return list(db.scalars(select(models.Journey.workflow_id).where(
        models.Journey.customer_id == customer_id, models.Journey.status.in_(ACTIVE))))


def kind_of(db: Session, journey: models.Journey) -> str:
    """The kind of flow a journey runs (``journey``, ``ticket``, ``settlement``): who may cancel it follows
    from it. A journey whose flow is gone counts as a ``journey``."""
    kind = db.scalar(select(models.FlowRecord.kind).where(models.FlowRecord.id == journey.flow_id))
    return str(kind) if kind else "journey"


async def request_cancel(client: Client, journey_id: str, user: models.User, database_url: str | None = None) -> None:
    """Send a running journey the ``cancel`` signal saying who asked, and write that to the audit log; the
    workflow exits at its next step and records ``cancelled``. A signal that fails raises (nothing audited)."""
    await client.get_workflow_handle(journey_id).signal("cancel", f"by {user.username}")

    def _audit() -> None:
        with transaction(database_url) as db:
            auth.audit(db, user, "journey.cancel_requested", journey_id, {})

    await asyncio.to_thread(_audit)


async def wake(client: Client, journey_id: str, key: str) -> bool:
    """Tell a journey that the outside outcome its deferred action awaits (``ActionResult.awaiting`` = ``key``)
    is in, so it runs the action again now. False when the journey runs no more (ended, or never was);
    other failures (Temporal unreachable) raise, and the caller tries again later."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(journey_id).signal("wake", key)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
