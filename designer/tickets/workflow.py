"""Telling a ticket's workflow what happened, from the API and the console alike: ``changed`` after every
change (so SLA deadlines and waiting review / step nodes look again) and starting the workflow of a new
ticket. Without Temporal nothing is lost: the workflow re-reads the ticket on its next wake-up, and the
web app's re-router starts pending tickets once Temporal is reachable.
"""

from __future__ import annotations

import logging

from fastapi import Request

from designer.context import engine_router
from engine.tickets_workflow import signal_changed, start_ticket

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
            await signal_changed(router_.client, tid, what)
        except Exception as exc:  # the change is stored; the workflow re-reads it on its next wake-up
            log.warning("ticket %s: signal not delivered (%s)", tid, type(exc).__name__)


async def start(request: Request, db_url: str, ticket_id: int) -> None:
    """Start a new ticket's workflow (its type's ticket flow)."""
    router_ = engine_router(request)
    if router_ is None:
        return  # the re-router loop starts it once Temporal is reachable
    try:
        await start_ticket(router_.client, db_url, router_.task_queue, ticket_id)
    except Exception as exc:
        log.warning("ticket %s: workflow start deferred (%s)", ticket_id, type(exc).__name__)
