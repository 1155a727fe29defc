"""Telling a ticket's workflow what happened, from the API and the console alike: ``changed`` after every
change (so SLA deadlines and waiting review / step nodes look again) and starting the workflow of a new
ticket. Without Temporal nothing is lost: the workflow re-reads the ticket on its next wake-up, and the
web app's re-router starts pending tickets once Temporal is reachable.
"""

from __future__ import annotations

import logging

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from designer.auth import get_db_url
from designer.context import engine_router
from engine.tickets_workflow import restart_ticket, signal_changed, start_ticket

log = logging.getLogger(__name__)


async def changed(request: Request, ticket_id: int, what: str, parent_id: int | None = None) -> None:
    """Wake the ticket's workflow (and its parent's: it may wait on its sub-tasks)."""
    router_ = engine_router(request)
    if router_ is None:
        return  # no Temporal: the workflow re-reads the ticket on its next wake-up
    for tid in (ticket_id, parent_id):
        if tid is None:
            continue
        try:
            if not await signal_changed(router_.client, tid, what) and what == "status":
                # not running: a resolved ticket reopened — its workflow starts again with its SLA
                await restart_ticket(router_.client, get_db_url(request), router_.task_queue, tid)
        except Exception as exc:  # the change is stored; the workflow re-reads it on its next wake-up
            log.warning("ticket %s: signal not delivered (%s)", tid, type(exc).__name__)


async def offered(request: Request, db_url: str, agent_id: int) -> list[int]:
    """An agent came online: the tickets queued in their groups are offered again (assigned by their groups'
    strategies); their workflows hear of it. Returns the ids assigned."""
    from activities.tickets.service import offer_queued
    from engine.db.models import utcnow
    from engine.db.session import transaction

    def work() -> list[int]:
        with transaction(db_url) as db:
            return offer_queued(db, agent_id, utcnow())

    assigned = await run_in_threadpool(work)
    for tid in assigned:
        await changed(request, tid, "assigned")
    return assigned


async def start(request: Request, db_url: str, ticket_id: int) -> None:
    """Start a new ticket's workflow (its type's ticket flow)."""
    router_ = engine_router(request)
    if router_ is None:
        return  # the re-router loop starts it once Temporal is reachable
    try:
        await start_ticket(router_.client, db_url, router_.task_queue, ticket_id)
    except Exception as exc:
        log.warning("ticket %s: workflow start deferred (%s)", ticket_id, type(exc).__name__)
