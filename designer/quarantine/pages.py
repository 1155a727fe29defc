"""The quarantine pages (admins): ``/quarantine`` lists what kept failing — events the router could not route,
connector pushes that map to no valid event, tickets whose workflow did not start — filtered by kind and status,
with counts, each entry's reference, its error in words, its attempts and when; ``/quarantine/{id}`` shows one
entry with its payload (as the read policy lets the reader see it), edits the event's payload as JSON, sends it
again and drops it (after a confirmation page).

Thin routes over :mod:`engine.quarantine` — the same functions the JSON API (:mod:`designer.quarantine.api`)
calls, re-drives included (:func:`designer.quarantine.api.redrive_entry`) — so every change is audited the same
way. What a re-drive did is the server's answer: the journeys it started, or the error that made it fail again.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from designer import reading
from designer.i18n import _, translate
from designer.pages import ADMIN, DbUrl, PageProblem, Pager, PageRoute, page_number, page_user, render, see_other
from designer.quarantine import labels as _labels  # noqa: F401  (kinds, statuses, errors in words)
from designer.quarantine.api import redrive_entry
from engine import quarantine
from engine.db.models import User
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory, transaction

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Admin = Annotated[User, Depends(page_user(*ADMIN))]
FILTER_STATUSES = (*quarantine.STATUSES, "all")
#: what a redirect may ask the entry or list page to say (never free text from the URL)
DONE = frozenset({"fixed", "dropped"})
#: characters of payload JSON the editor takes (the entrance's byte limit applies after parsing)
MAX_EDIT = 2_000_000


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def _done(request: Request, entry_id: str = "") -> str | None:
    done = request.query_params.get("done") or ""
    if done == "fixed":
        return _("The payload is saved. Send the entry again when it is right.")
    if done == "dropped":
        return _("Entry %(id)s is dropped: it will not be sent, and it stays on record.") % {
            "id": request.query_params.get("id", entry_id)}
    return None


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request, user: Admin, db_url: DbUrl, kind: str = "", status: str = "open",
                    page: str = "") -> HTMLResponse:
    """What kept failing, newest first: by kind and status, with counts."""
    kind = kind if kind in quarantine.KINDS else ""
    status = status if status in FILTER_STATUSES else "open"
    with session_factory(db_url)() as db:
        wanted = None if status == "all" else status
        total = quarantine.listing(db, kind or None, wanted, 1, 0).total
        pager = Pager(request, page_number(page), total)
        found = quarantine.listing(db, kind or None, wanted, pager.per, pager.offset)
        by_kind = quarantine.counts_by_kind(db, wanted)
        reader = reading.reader_of(db, user)
        rows = [{**quarantine.describe(e, reader), "created": e.created_at, "updated": e.updated_at,
                 "meaning": quarantine.error_kind(e.kind, e.error)} for e in found.entries]
    return render(request, user, "quarantine/list.html", rows=rows, pager=pager, kind=kind, status=status,
                  kinds=quarantine.KINDS, statuses=FILTER_STATUSES, by_status=found.by_status, by_kind=by_kind,
                  notice=_done(request))


def _entry_page(request: Request, user: User, db_url: str, entry_id: int, status_code: int = 200,
                **extra: Any) -> HTMLResponse:
    with session_factory(db_url)() as db:
        entry = db.get(QuarantineEntry, entry_id)
        if entry is None:
            raise PageProblem(404, user, _("Not found"), _("There is no quarantine entry %(id)s.") % {"id": entry_id},
                              back="/quarantine")
        shown = quarantine.describe(entry, reading.reader_of(db, user))
        created, updated, redriven = entry.created_at, entry.updated_at, entry.redriven_at
        meaning = quarantine.error_kind(entry.kind, entry.error)
    editable = shown["status"] == "open" and shown["kind"] != "ticket_start" and not shown["pii_masked"]
    inner = shown["payload"].get("payload", {}) if isinstance(shown["payload"], dict) else {}
    extra.setdefault("draft", _pretty(inner))
    return render(request, user, "quarantine/entry.html", status_code=status_code, entry=shown, created=created,
                  updated=updated, redriven=redriven, meaning=meaning, editable=editable,
                  whole=_pretty(shown["payload"]), notice=extra.pop("notice", None) or _done(request, str(entry_id)),
                  **extra)


def _problem(exc: quarantine.QuarantineError) -> dict[str, str | None]:
    return {"field": exc.field, "message": translate(exc.message), "fix": translate(exc.fix)}


@router.get("/quarantine/{entry_id:int}", response_class=HTMLResponse)
def entry_page(request: Request, entry_id: int, user: Admin, db_url: DbUrl) -> HTMLResponse:
    return _entry_page(request, user, db_url, entry_id)


@router.post("/quarantine/{entry_id:int}/payload", response_class=HTMLResponse)
async def fix_payload(request: Request, entry_id: int, user: Admin, db_url: DbUrl,
                      payload: Annotated[str, Form(max_length=MAX_EDIT)] = "") -> Response:
    """Save the edited payload (checked as ``/api/events`` checks one); a refusal shows the editor again with
    what was typed and the problem at the field."""
    def work() -> None:
        parsed = quarantine.parse_payload(payload)
        with transaction(db_url) as db:
            quarantine.fix_payload(db, entry_id, parsed, user.username)

    try:
        await run_in_threadpool(work)
    except quarantine.QuarantineError as exc:
        return await run_in_threadpool(_entry_page, request, user, db_url, entry_id, exc.status,
                                       problem=_problem(exc), draft=payload)
    return see_other(f"/quarantine/{entry_id}?done=fixed")


@router.post("/quarantine/{entry_id:int}/redrive", response_class=HTMLResponse)
async def redrive(request: Request, entry_id: int, user: Admin, db_url: DbUrl) -> HTMLResponse:
    """Send the entry again and say what the server answered: the journeys it started (or that none did),
    or why it failed again (the entry stays open with that error)."""
    try:
        _entry, outcome = await redrive_entry(request, entry_id, user)
    except quarantine.QuarantineError as exc:
        return await run_in_threadpool(_entry_page, request, user, db_url, entry_id, exc.status,
                                       failed=_problem(exc))
    return await run_in_threadpool(_entry_page, request, user, db_url, entry_id, outcome=outcome)


@router.get("/quarantine/{entry_id:int}/drop", response_class=HTMLResponse)
def confirm_drop(request: Request, entry_id: int, user: Admin, db_url: DbUrl) -> HTMLResponse:
    """Are you sure? Dropping cannot be undone (the entry stays on record)."""
    with session_factory(db_url)() as db:
        entry = db.get(QuarantineEntry, entry_id)
        if entry is None:
            raise PageProblem(404, user, _("Not found"), _("There is no quarantine entry %(id)s.") % {"id": entry_id},
                              back="/quarantine")
        shown = {"id": entry.id, "kind": entry.kind, "ref": entry.ref, "status": entry.status}
    return render(request, user, "quarantine/drop.html", entry=shown)


@router.post("/quarantine/{entry_id:int}/drop", response_class=HTMLResponse)
def drop(request: Request, entry_id: int, user: Admin, db_url: DbUrl,
         confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    if confirm != "yes":
        return see_other(f"/quarantine/{entry_id}/drop")
    try:
        with transaction(db_url) as db:
            quarantine.drop(db, entry_id, user.username)
    except quarantine.QuarantineError as exc:
        return _entry_page(request, user, db_url, entry_id, exc.status, failed=_problem(exc))
    return see_other(f"/quarantine?done=dropped&id={entry_id}")
