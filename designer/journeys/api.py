"""Journeys in the JSON API: list them (with counts per status), read one (a failed one with why: the node,
the error, the attempts; a running one with any trouble it is in right now), the failed ones filtered, and
retry or cancel.

Who may cancel or retry is who may edit the flow's kind (:mod:`designer.permissions`); the work is
:func:`engine.journeys.request_cancel` and :mod:`engine.journey_failures`, as on the journey pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.display import display_zone
from designer.errors import ApiError
from designer.i18n import Language, api_language, current_language, templates_saying, translate
from designer.permissions import FLOW_READERS, check_may_edit
from engine import journey_failures
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.models import User
from engine.db.session import session_factory
from engine.journeys import ACTIVE, kind_of, request_cancel
from engine.text import Msg
from wording.stored import PREFIX, read_stored, stored_english, template_mark

log = logging.getLogger(__name__)
api = APIRouter(prefix="/api")
Reader = Annotated[User, Depends(require(*FLOW_READERS))]
#: how often the web app looks for newly failed journeys and keeps their reasons (seconds)
KEEP_REASONS_EVERY = 10.0
#: the words of the error (``q``) find a reason saved as a ``Msg`` (said in English and in the reader's language)
#: by its template's own words in SQL, for at most this many templates — a ``LIKE`` each, on every failure: 0.5 s
#: for 100,000 failures on SQLite (words as short as a letter are in most of the catalogue, "失败" in 49 templates:
#: past this only the reasons read back below count) …
MAX_TEMPLATES_MATCHED = 60
#: … and by its values' words (a coupon's id, a platform's answer) or words across a template and a value, read back
#: here: the latest this many of the reasons whose saved text holds the words, and the latest this many of all
MAX_REASONS_READ = 5000


# -- failed journeys: the filter (shared with the pages) --------------------------------------------------


class FailureFilter:
    """Failed journeys by flow, node, words of the error, customer and the days they failed (display TZ).

    The words (``q``) match the reason as people read it, ignoring case: its English (what the API answers) and its
    text in ``lang`` (the reader's: the page's language, the API's chosen one) — never the saved form
    (``wording.stored``'s ``tideflow-msg:`` JSON). A reason saved as plain text (an activity's words, one from
    before) is matched in SQL. A reason saved as a ``Msg`` is found in SQL when the words are its template's own
    (:func:`designer.i18n.templates_saying`, :func:`wording.stored.template_mark`), however old it is; words of its
    values, or across a template and a value, are found by reading reasons back and saying them in both languages
    (see :data:`MAX_REASONS_READ`)."""

    def __init__(self, flow: str = "", node: str = "", q: str = "", customer: str = "", since: str = "",
                 until: str = "", lang: Language | None = None) -> None:
        self.flow, self.node, self.q = flow.strip()[:80], node.strip()[:80], q.strip()[:200]
        self.lang = lang
        self._said: list[str] | None = None
        self.customer, self.since, self.until = customer.strip()[:40], since.strip()[:10], until.strip()[:10]
        self.bad: str | None = None
        self.start, self.end = self._day(self.since), self._day(self.until)

    def _day(self, text: str) -> datetime | None:
        if not text:
            return None
        try:
            return datetime.combine(date.fromisoformat(text), time(0), display_zone())
        except ValueError:
            self.bad = text
            return None

    def said_matching(self, db: Session) -> list[str]:
        """The reasons saved as a ``Msg`` whose English or reader's-language text holds the words (as saved), among
        those read back: the latest whose saved text holds the words' longest word as typed (a value's, or the
        English template's when the words run across a value) and the latest of all."""
        if self._said is not None:
            return self._said
        failure = JourneyFailure
        said = failure.error.startswith(PREFIX, autoescape=True)
        longest = max(self.q.split(), key=len, default=self.q)  # words across a template and a value: one of them
        as_saved = json.dumps(longest, ensure_ascii=False)[1:-1]  # how it looks inside the saved JSON
        base = (select(failure.error).join(models.Journey, models.Journey.workflow_id == failure.workflow_id)
                .where(models.Journey.status == "failed", said).group_by(failure.error)
                .order_by(func.max(failure.failed_at).desc()).limit(MAX_REASONS_READ))
        words, lang = self.q.casefold(), self.lang or current_language()
        found: dict[str, None] = {}
        for query in (base.where(failure.error.icontains(as_saved, autoescape=True)), base):
            for text in db.scalars(query):
                reason = read_stored(text)
                if words in str(reason).casefold() or words in translate(reason, lang).casefold():
                    found[text] = None
        self._said = list(found)
        return self._said

    def said_condition(self, db: Session) -> ColumnElement[bool]:
        """Where a reason saved as a ``Msg`` says the words: its template's own words (any reason of those
        templates, in SQL), or one of :meth:`said_matching`'s."""
        templates = templates_saying(self.q, self.lang or current_language())
        read_back = JourneyFailure.error.in_(self.said_matching(db))
        if not templates or len(templates) > MAX_TEMPLATES_MATCHED:
            return read_back
        marks = [JourneyFailure.error.contains(template_mark(template), autoescape=True) for template in templates]
        return or_(JourneyFailure.error.startswith(PREFIX, autoescape=True) & or_(*marks), read_back)

    def query(self, db: Session) -> Select[models.Journey, JourneyFailure]:
        journey, failure = models.Journey, JourneyFailure
        query = (select(journey, failure).outerjoin(failure, failure.workflow_id == journey.workflow_id)
                 .where(journey.status == "failed"))
        if self.flow:
            query = query.where(journey.flow_id == self.flow)
        if self.node:
            query = query.where(func.coalesce(failure.node_id, journey.current_node) == self.node)
        if self.q:
            query = query.where(or_(
                ~failure.error.startswith(PREFIX, autoescape=True) & failure.error.icontains(self.q, autoescape=True),
                self.said_condition(db)))
        if self.customer:
            query = query.where(journey.customer_id == self.customer)
        if self.start is not None:
            query = query.where(func.coalesce(failure.failed_at, journey.ended_at) >= self.start)
        if self.end is not None:
            query = query.where(func.coalesce(failure.failed_at, journey.ended_at) < self.end + timedelta(days=1))
        return query

    @property
    def any(self) -> bool:
        return bool(self.flow or self.node or self.q or self.customer or self.since or self.until)


def failed_page(db: Session, filters: FailureFilter, limit: int, offset: int
                ) -> tuple[int, list[tuple[models.Journey, JourneyFailure | None]]]:
    query = filters.query(db)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.execute(query.order_by(func.coalesce(JourneyFailure.failed_at, models.Journey.ended_at).desc(),
                                     models.Journey.workflow_id).offset(offset).limit(limit)).all()
    return int(total), [(j, f) for j, f in rows]


async def keep_reasons(request_or_app: Request | FastAPI, limit: int = 50) -> int:
    """Read and keep the reasons of newly failed journeys now (when the engine is reachable)."""
    app = request_or_app.app if isinstance(request_or_app, Request) else request_or_app
    router = getattr(app.state, "router", None)
    if router is None:
        return 0
    try:
        return await journey_failures.record_new_failures(router.client, app.state.database_url, limit)
    except Exception as exc:  # the engine went away: the next round reads them
        log.warning("failure reasons not read now: %s", type(exc).__name__)
        return 0


async def keep_reasons_forever(app: FastAPI, every: float = KEEP_REASONS_EVERY) -> None:
    """The web app's loop: a failed journey's reason is kept within seconds, long before Temporal forgets it."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await keep_reasons(app)


def _journey_json(journey: models.Journey, failure: JourneyFailure | None) -> dict[str, Any]:
    return {"id": journey.workflow_id, "flow": journey.flow_id, "version": journey.version,
            "customer_id": journey.customer_id, "status": journey.status, "node": journey.current_node,
            "started_at": journey.started_at.isoformat(),
            "ended_at": journey.ended_at.isoformat() if journey.ended_at else None,
            "failure": journey_failures.as_json(failure)}


def _action_error(exc: journey_failures.JourneyActionError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.fix, "id")


@api.get("/journeys", tags=["journeys"])
def list_journeys(request: Request, user: Reader, flow: str | None = None, status: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    with session_factory(get_db_url(request))() as db:
        query = select(models.Journey)
        counts = select(models.Journey.status, func.count()).group_by(models.Journey.status)
        if flow:
            query = query.where(models.Journey.flow_id == flow)
            counts = counts.where(models.Journey.flow_id == flow)
        if status:
            query = query.where(models.Journey.status == status)
        rows = db.scalars(query.order_by(models.Journey.started_at.desc()).limit(limit))
        return {"by_status": {str(s): int(n) for s, n in db.execute(counts).all()},
                "journeys": [{"id": j.workflow_id, "flow": j.flow_id, "version": j.version,
                              "customer_id": j.customer_id, "status": j.status, "node": j.current_node,
                              "started_at": j.started_at.isoformat(),
                              "ended_at": j.ended_at.isoformat() if j.ended_at else None,
                              "error": stored_english(j.error)} for j in rows]}


@api.get("/journeys/failed", tags=["journeys"])
async def failed_journeys(request: Request, user: Reader, flow: str = "", node: str = "",
                          q: Annotated[str, Query(description="words of the error")] = "", customer: str = "",
                          since: Annotated[str, Query(alias="from", description="YYYY-MM-DD, display time zone")] = "",
                          until: Annotated[str, Query(alias="to", description="YYYY-MM-DD, inclusive")] = "",
                          limit: Annotated[int, Query(ge=1, le=500)] = 100,
                          offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Failed journeys, newest failure first, each with why (``failure``: node, error, attempts)."""
    filters = FailureFilter(flow, node, q, customer, since, until, api_language())
    if filters.bad:
        raise ApiError(422, Msg("the date %(bad)s is not valid", bad=repr(filters.bad)), Msg("use YYYY-MM-DD"), "from")
    await keep_reasons(request)

    def work() -> dict[str, Any]:
        with session_factory(get_db_url(request))() as db:
            total, rows = failed_page(db, filters, limit, offset)
            return {"total": total, "journeys": [_journey_json(j, f) for j, f in rows]}

    return await run_in_threadpool(work)


def _may_change(request: Request, user: User, journey_id: str) -> models.Journey:
    with session_factory(get_db_url(request))() as db:
        journey = db.get(models.Journey, journey_id)
        if journey is None:
            raise ApiError(404, Msg("journey '%(journey_id)s' does not exist", journey_id=journey_id),
                               Msg("list journeys first"), "id")
        check_may_edit(user, kind_of(db, journey))
        return journey


@api.post("/journeys/{journey_id:path}/retry", tags=["journeys"])
async def retry_journey(request: Request, journey_id: str, user: Reader) -> dict[str, Any]:
    """Run a failed journey's failing step again (same idempotency key: what was done is not done twice)."""
    await run_in_threadpool(_may_change, request, user, journey_id)
    router = engine_router(request)
    if router is None:
        raise ApiError(503, Msg("the workflow engine is not reachable right now"), Msg("retry in a few seconds"))
    try:
        run_id = await journey_failures.retry(router.client, get_db_url(request), journey_id, user)
    except journey_failures.JourneyActionError as exc:
        raise _action_error(exc) from None
    return {"id": journey_id, "status": "running", "run_id": run_id}


@api.post("/journeys/{journey_id:path}/cancel", tags=["journeys"])
async def cancel_journey(request: Request, journey_id: str, user: Reader) -> dict[str, Any]:
    def _journey() -> models.Journey:
        with session_factory(get_db_url(request))() as db:
            j = db.get(models.Journey, journey_id)
            if j is None:
                raise ApiError(404, Msg("journey '%(journey_id)s' does not exist", journey_id=journey_id),
                               Msg("list journeys first"), "id")
            check_may_edit(user, kind_of(db, j))
            return j

    journey = await run_in_threadpool(_journey)
    router = engine_router(request)
    if journey.status == "failed":  # give it up: it stays on record as cancelled, with its reason
        try:
            status = await journey_failures.give_up(router.client if router else None, get_db_url(request),
                                                    journey_id, user)
        except journey_failures.JourneyActionError as exc:
            raise _action_error(exc) from None
        return {"id": journey_id, "status": status}
    if router is None:
        raise ApiError(503, Msg("the workflow engine is not reachable right now"), Msg("retry in a few seconds"))
    if journey.status not in ACTIVE:
        raise ApiError(409, Msg("journey is already %(status)s", status=journey.status), Msg("nothing to cancel"), "id")
    try:
        trouble = await journey_failures.read_trouble(router.client, journey_id)
    except Exception:  # the engine could not describe it: the cancel signal still goes out
        trouble = None
    if trouble is not None:
        # retrying an outside system or stuck: it would not reach its next step to hear the signal
        status = await journey_failures.give_up(router.client, get_db_url(request), journey_id, user)
        return {"id": journey_id, "status": status}
    await request_cancel(router.client, journey_id, user, get_db_url(request))
    return {"id": journey_id, "status": "cancelling"}


@api.get("/journeys/{journey_id:path}", tags=["journeys"])
async def get_journey(request: Request, journey_id: str, user: Reader) -> dict[str, Any]:
    """One journey; a failed one with why it failed, a running one with the trouble it is in now (if any)."""
    def work() -> dict[str, Any]:
        with session_factory(get_db_url(request))() as db:
            journey = db.get(models.Journey, journey_id)
            if journey is None:
                raise ApiError(404, Msg("journey '%(journey_id)s' does not exist", journey_id=journey_id),
                               Msg("list journeys first"), "id")
            return _journey_json(journey, db.get(JourneyFailure, journey_id))

    if (await run_in_threadpool(work))["status"] == "failed":
        await keep_reasons(request)
    found = await run_in_threadpool(work)
    router = engine_router(request)
    found["trouble"] = None
    if found["status"] in ACTIVE and router is not None:
        with contextlib.suppress(Exception):
            trouble = await journey_failures.read_trouble(router.client, journey_id)
            found["trouble"] = trouble.as_dict() if trouble else None
    return found
