"""The customer satisfaction survey (public, signed link): ``/csat/{id}/{token}`` — the customer rates the
resolution 1–5 (with a comment) through the link sent in the resolution message.

The token is an HMAC of the ticket id under a key derived from the instance key, so it cannot be forged
or moved to another ticket; one answer per ticket (a ``csat`` ticket event keyed ``csat/<id>``), which
also becomes a ``survey.answered`` event journeys can react to.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from activities.tickets import service, survey
from designer import i18n
from designer.auth import get_db_url, public
from designer.pages import PageRoute, remember_language, templates
from designer.tickets.workflow import changed
from engine import events as ingest
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.pii import mask_text
from engine.settings import get_settings

log = logging.getLogger(__name__)
router = APIRouter(route_class=PageRoute, include_in_schema=False)
DbUrl = Annotated[str, Depends(get_db_url)]


def csat_token(ticket_id: int, key: str | None = None, now: datetime | None = None) -> str:
    """The token of a ticket's satisfaction link sent ``now``: signed, with its expiry
    (``TIDEFLOW_CSAT_LINK_DAYS``) inside (activities/tickets/survey.py)."""
    return survey.link_token(ticket_id, now or utcnow(), get_settings().csat_link_days, key)


def csat_check(ticket_id: int, token: str, key: str | None = None, now: datetime | None = None) -> survey.Verdict:
    return survey.check(ticket_id, token, now or utcnow(), key)


def csat_ok(ticket_id: int, token: str, key: str | None = None) -> bool:
    return csat_check(ticket_id, token, key) == "ok"


def csat_url(request: Request, ticket_id: int) -> str:
    return str(request.base_url).rstrip("/") + f"/csat/{ticket_id}/{csat_token(ticket_id)}"


def answer_of(db: Session, ticket_id: int) -> dict[str, Any] | None:
    """The customer's rating of the ticket, if they gave one (the comment masked)."""
    found = db.scalar(select(models.TicketEvent).where(models.TicketEvent.key == f"csat/{ticket_id}"))
    if found is None:
        return None
    return {"score": int(found.data.get("score", 0)), "comment": mask_text(str(found.data.get("comment") or "")),
            "at": found.at}


def _csat_page(request: Request, status_code: int = 200, **extra: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, "tickets/csat.html",
                                          {"lang": i18n.current_language(), **extra}, status_code=status_code)
    remember_language(request, response)
    return response


def _csat_ticket(db_url: str, ticket_id: int, token: str
                 ) -> tuple[models.Ticket | None, dict[str, Any] | None, survey.Verdict]:
    verdict = csat_check(ticket_id, token)
    if verdict != "ok":
        return None, None, verdict
    with session_factory(db_url)() as db:
        ticket = db.get(models.Ticket, ticket_id)
        return ticket, (answer_of(db, ticket_id) if ticket else None), verdict


def _refused(request: Request, verdict: survey.Verdict) -> HTMLResponse:
    """An expired link is 410 Gone (it was real once); anything else 404, like a ticket that does not exist."""
    if verdict == "expired":
        return _csat_page(request, 410, state="expired", days=get_settings().csat_link_days)
    return _csat_page(request, 404, state="invalid")


def survey_event(db_url: str, ticket: models.Ticket, score: int, comment: str) -> None:
    """The rating as a ``survey.answered`` event of the customer (once: its id is derived from the
    ticket), so journeys can react to it; routed as soon as it is stored (engine/follow_ups.py)."""
    try:
        ingest.store_and_hand_on([ingest.EventIn(
            id=f"csat:{ticket.id}", type="survey.answered", source="tickets",
            customer={"customer_id": str(ticket.customer_id)}, occurred_at=utcnow(),
            payload={"survey": "csat", "ticket_id": ticket.id, "ticket_type": ticket.type_key, "score": score,
                     "comment": comment})], db_url)
    except Exception as exc:  # the rating itself is stored on the ticket; the event is a convenience
        log.warning("ticket %s: survey.answered not stored (%s)", ticket.id, type(exc).__name__)


@router.get("/csat/{ticket_id}/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
def csat_form(request: Request, ticket_id: int, token: str, db_url: DbUrl) -> HTMLResponse:
    """The customer's rating form (no login: the signed link is the credential)."""
    ticket, answer, verdict = _csat_ticket(db_url, ticket_id, token[:100])
    if ticket is None:
        return _refused(request, verdict)
    if answer is not None:  # single use: once rated, the link only says so
        return _csat_page(request, state="already", answer=answer)
    if ticket.status not in ("resolved", "closed"):
        return _csat_page(request, 409, state="not_resolved")
    return _csat_page(request, state="form", ticket_id=ticket_id, token=token)


@router.post("/csat/{ticket_id}/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
async def csat_answer(request: Request, ticket_id: int, token: str, db_url: DbUrl,
                      score: Annotated[str, Form(max_length=2)] = "",
                      comment: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse:
    """Store the rating once per ticket (a ``csat`` ticket event keyed ``csat/<id>``)."""
    ticket, answer, verdict = await run_in_threadpool(_csat_ticket, db_url, ticket_id, token[:100])
    if ticket is None:
        return _refused(request, verdict)
    if answer is not None:
        return _csat_page(request, 409, state="already", answer=answer)
    if ticket.status not in ("resolved", "closed"):
        return _csat_page(request, 409, state="not_resolved")
    if score not in ("1", "2", "3", "4", "5"):
        return _csat_page(request, 422, state="form", ticket_id=ticket_id, token=token, error=True)

    def store() -> bool:
        with transaction(db_url) as db:
            found = service.get_ticket(db, ticket_id, lock=True)
            made = service.record(db, found, "csat", utcnow(), "customer", public=True, key=f"csat/{ticket_id}",
                                  score=int(score), comment=comment.strip()[:2000])
            return made is not None

    stored = await run_in_threadpool(store)
    if not stored:
        return _csat_page(request, 409, state="already", answer=None)
    await changed(request, ticket_id, "csat")
    if ticket.customer_id:
        await run_in_threadpool(survey_event, db_url, ticket, int(score), comment.strip()[:2000])
    return _csat_page(request, state="thanks", score=int(score))
