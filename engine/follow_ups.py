"""Follow-up events routed as soon as the transaction that recorded them commits.

Tideflow's own events (``loyalty.points_earned``, ``loyalty.tier_changed``, ``referral.progress`` …) are
stored by :func:`engine.events.record_follow_up` in the transaction of the change that causes them. A process
that routes events (a web process, a worker) installs its :class:`~engine.pipeline.RoutingPipeline` here for
its database (:func:`install`); then

1. ``record_follow_up`` stores the event *claimed* (``claimed_until`` = now + :data:`engine.events.CLAIM`, in
   that same transaction) and notes its row id on the session (:func:`note`);
2. when the session's outermost transaction commits, the ids go to the installed router (:func:`_committed`),
   which routes them through the pipeline's lanes — the one home for routing stored events — or, inside
   :func:`held`, to the caller, which routes them after the events that caused them;
3. the pipeline writes the outcome as for any event: routed (claim cleared), or left for the re-router.

The re-router only takes events whose claim lapsed, so it never routes a follow-up this process is routing,
and two processes never route one: only the process whose transaction stored it has its id. A process that
dies between the commit and the routing leaves the event claimed in its name (``claimed_by``); its heartbeat
goes stale and the re-router routes it within :data:`engine.claims.HOLDER_STALE` (10 s) plus up to one
re-router period (a claim without a holder waits for :data:`engine.events.CLAIM`, 60 s). Without an installed, ready
router (Temporal unreachable, a script, a test without one) follow-ups are stored unclaimed and wait for the
re-router, as before.

A savepoint rolled back after the event was noted removes the row; the router reads the rows back by id
(``status = received``) before routing, so a row that did not commit is never routed.

**Tickets to start** are the second kind of work noted on a session. A ticket whose type runs a flow is
stored with ``workflow_id`` NULL (by an event hook, the ``action.create_ticket`` node, a page or the API);
:func:`note_ticket` remembers its id, and after the outermost commit the ids go to the installed router's
``start_tickets`` (never held: starting a ticket's workflow waits for nothing). It starts each ticket whose
``workflow_id`` is still NULL (:func:`engine.tickets_workflow.start_ticket`: derived id, once).
:func:`engine.tickets_workflow.start_pending` (the re-router) stays the safety net for a process that dies
between the commit and the start, an unreachable Temporal, or a process with nothing installed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: where a session keeps the row ids of the follow-up events its transaction stored
NOTED = "tideflow.follow_ups"
#: where a session keeps the ids of the tickets its transaction created that are to start a workflow
TICKETS = "tideflow.tickets_to_start"
#: the database URL a session belongs to (set by :func:`engine.db.session.session_factory`)
DATABASE_URL = "tideflow.database_url"


@dataclass(frozen=True)
class FollowUpRouter:
    """What a process installs: whether it can route now, and how (called from any thread, must not block)."""

    ready: Callable[[], bool]
    route: Callable[[list[int]], None]
    #: start the workflows of these committed tickets (None: this process leaves them to the re-router)
    start_tickets: Callable[[list[int]], None] | None = None
    #: the claims' holder (:class:`engine.claims.Holder`): follow-ups stored for this router are claimed in its
    #: name, so they are taken over within seconds if the process dies (None: they wait for the claim to lapse)
    holder: Any = None  # engine.claims.Holder (which this module cannot import: engine.db imports it)


_routers: dict[str, list[FollowUpRouter]] = {}
_lock = threading.Lock()


def install(database_url: str, router: FollowUpRouter) -> Callable[[], None]:
    """Route follow-up events committed on ``database_url`` in this process through ``router``; returns the
    function that uninstalls it. The latest installed router that is ready takes them."""
    with _lock:
        _routers.setdefault(database_url, []).append(router)

    def uninstall() -> None:
        with _lock:
            found = _routers.get(database_url, [])
            if router in found:
                found.remove(router)

    return uninstall


def routes_here(database_url: str | None) -> bool:
    """Whether this process routes events committed on this database as soon as they commit (then a caller
    that stores events outside an ingestion request claims them and hands them to :func:`dispatch`)."""
    return _router(_resolved(database_url), ready_only=True) is not None


def holder_here(database_url: str | None) -> Any:
    """The claims' holder of this process's ready router for this database (see :func:`routes_here`)."""
    router = _router(_resolved(database_url), ready_only=True)
    return router.holder if router is not None else None


def _resolved(database_url: str | None) -> str:
    from engine.settings import get_settings

    return database_url or get_settings().resolved_database_url()


def router_for(db: Session) -> FollowUpRouter | None:
    """The ready router of this session's database, if this process installed one."""
    return _router(db.info.get(DATABASE_URL), ready_only=True)


def _router(database_url: Any, ready_only: bool) -> FollowUpRouter | None:
    if database_url is None:
        return None
    with _lock:
        candidates = list(_routers.get(database_url, ()))
    return next((r for r in reversed(candidates) if r.ready() or not ready_only), None)


_held: ContextVar[list[int] | None] = ContextVar("tideflow_follow_ups_held", default=None)


@contextlib.contextmanager
def held() -> Iterator[list[int]]:
    """Within the block (and in threads it starts with a copy of its context, as ``asyncio.to_thread`` and
    FastAPI's thread pool do), follow-up events committed are collected in the list yielded instead of being
    routed: the caller routes them right after the events that caused them (the events API stores an
    ``order.paid`` whose hook earns points; a journey the order starts must exist before the
    ``loyalty.points_earned`` it waits for is routed)."""
    token = _held.set([])
    try:
        found = _held.get()
        assert found is not None
        yield found
    finally:
        _held.reset(token)


def note(db: Session, row_id: int) -> None:
    """Remember a follow-up event stored (claimed) in this session's transaction, to route after the commit."""
    db.info.setdefault(NOTED, []).append(row_id)


def note_ticket(db: Session, ticket_id: int) -> None:
    """Remember a ticket created in this session's transaction, to start its workflow after the commit."""
    db.info.setdefault(TICKETS, []).append(ticket_id)


def _outermost(session: Session) -> bool:
    return session.get_nested_transaction() is None


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if not _outermost(session):  # a savepoint released: not committed yet
        return
    if TICKETS in session.info:
        start_tickets(session.info.get(DATABASE_URL), session.info.pop(TICKETS))
    if NOTED not in session.info:
        return
    ids: list[int] = session.info.pop(NOTED)
    bucket = _held.get()
    if bucket is not None:  # the caller routes them after the events that caused them
        bucket.extend(ids)
        return
    dispatch(session.info.get(DATABASE_URL), ids)


def dispatch(database_url: str | None, ids: list[int]) -> None:
    """Hand committed follow-up events to this process's router for their database (the ready one, else the
    latest installed, which releases their claims for the re-router); never raises."""
    url = _resolved(database_url)
    router = _router(url, ready_only=True) or _router(url, ready_only=False)
    if router is None:  # uninstalled meanwhile: the claims lapse and the re-router routes them
        log.info("%d follow-up events left for the re-router (no router)", len(ids))
        return
    try:
        router.route(ids)
    except Exception as exc:  # never fail a commit that happened; the claims lapse and the re-router routes them
        log.warning("follow-up events not handed to routing: %s", type(exc).__name__)


def start_tickets(database_url: str | None, ids: list[int]) -> None:
    """Hand committed tickets to this process's ready ticket starter for their database; without one they
    wait for the re-router's :func:`engine.tickets_workflow.start_pending`. Never raises."""
    router = _router(_resolved(database_url), ready_only=True)
    starter = router.start_tickets if router is not None else None
    if starter is None:
        log.info("%d tickets left for the re-router to start (no starter)", len(ids))
        return
    try:
        starter(ids)
    except Exception as exc:  # never fail a commit that happened; the re-router starts them
        log.warning("tickets not handed to their start: %s", type(exc).__name__)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    # a savepoint's rollback keeps the list (rows noted before it are still to commit; rows inside it are
    # gone, and the router reads rows back before routing); the outermost rollback drops everything
    if _outermost(session):
        session.info.pop(NOTED, None)
        session.info.pop(TICKETS, None)
