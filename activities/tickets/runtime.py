"""The activities the ticket workflow (engine/tickets_workflow.py) calls by name: the ticket as flows
see it, the SLA plan (what to set the next durable timer for) and firing due SLA checkpoints.

Registered with the worker through the entry point group ``tideflow.worker_activities``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tickets import service
from engine.actions import Services
from engine.customers import customer_view
from engine.db import models
from engine.db.session import session_factory, transaction

#: an SLA notice WeCom is too busy to take is tried again by this many attempts of ``ticket.sla_fire`` (the
#: workflow's retry policy spaces them out, up to 5 minutes apart), then recorded as failed
NOTICE_ATTEMPTS = 6


class TicketActivities:
    def __init__(self, services: Services) -> None:
        self.url = services.database_url

    @activity.defn(name="ticket.context")
    def context(self, ticket_id: int) -> dict[str, Any]:
        with session_factory(self.url)() as db:
            ticket = db.get(models.Ticket, ticket_id)
            if ticket is None:
                return {"ticket": {}, "customer": {}}
            return {"ticket": service.view(ticket), "customer": customer_view(db, ticket.customer_id)}

    @activity.defn(name="ticket.sla_plan")
    def sla_plan(self, ticket_id: int) -> dict[str, Any]:
        with session_factory(self.url)() as db:
            ticket = db.get(models.Ticket, ticket_id)
            if ticket is None:
                return {"missing": True, "status": "missing", "plan": []}
            return {"status": ticket.status, "priority": ticket.priority, "plan": service.sla_plan(db, ticket)}

    @activity.defn(name="ticket.sla_fire")
    def sla_fire(self, request: dict[str, Any]) -> dict[str, Any]:
        now = datetime.fromisoformat(request["now"])
        with transaction(self.url) as db:
            ticket = service.get_ticket(db, int(request["ticket_id"]), lock=True)
            before = list(ticket.sla.get("fired") or [])
            notices = service.sla_fire(db, ticket, now, str(request["workflow_id"]))
            fired = [k for k in ticket.sla.get("fired") or [] if k not in before]
        with session_factory(self.url)() as db:  # these, and any a crashed attempt left undelivered
            notices = service.undelivered_notices(db, int(request["ticket_id"]))
        busy = 0
        for notice in notices:
            status = service.deliver_notice(notice, self.url)
            if status == "retry" and activity.info().attempt < NOTICE_ATTEMPTS:
                busy += 1  # nothing went out: left undelivered, sent by the activity's next attempt
                continue
            if status == "retry":
                status = "failed: WeCom stayed busy"
            with transaction(self.url) as db:
                event = db.query(models.TicketEvent).filter_by(key=notice["key"]).one_or_none()
                if event is not None:
                    event.data = {**event.data, "delivery": status}
        if busy:  # the checkpoints are recorded as fired: the next attempt only delivers what is left
            raise ApplicationError(f"{busy} SLA notice(s) not delivered yet: WeCom is busy; retrying",
                                   type="NoticeRetry")
        return {"fired": fired, "notified": len(notices)}


def worker_activities(services: Services) -> list[Callable[..., Any]]:
    """Entry point (``tideflow.worker_activities``): the ticket workflow's activities."""
    acts = TicketActivities(services)
    return [acts.context, acts.sla_plan, acts.sla_fire]
