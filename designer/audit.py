"""The audit log: who did what, when, and what it looked like before → after — ``GET /audit`` (the page, with
filters), ``GET /audit.csv`` (the same filters, exported) and ``GET /api/audit`` (JSON). Admins, and auditors
with personal data masked.

Entries are written by :func:`engine.auth.audit` (which never stores a secret). A small area: its routes live in
this one module (its page: ``templates/audit/audit.html``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import Select, func, select

from designer.auth import get_db_url, require
from designer.display import display_zone
from designer.errors import ApiError
from designer.i18n import _
from designer.pages import ADMIN, Pager, PageRoute, clip, page_number, page_user, render
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.read_policy import Reader, audit_view
from engine.text import Msg

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(prefix="/api", tags=["ops"])
#: who reads the audit log: admins and auditors (engine/read_policy.py); auditors see personal data masked
AUDIT_READERS = ("auditor",)
Admin = Annotated[User, Depends(page_user(*ADMIN, *AUDIT_READERS))]
DbUrl = Annotated[str, Depends(get_db_url)]
#: an export holds at most this many entries (narrow the filters for older ones)
EXPORT_LIMIT = 100_000


class Filters:
    """What the page, the export and the API filter on: actor (exact), action (prefix), target (exact, or a
    prefix when it ends with ``*`` or ``:``), a day range in the display time zone."""

    def __init__(self, actor: str = "", action: str = "", target: str = "", since: str = "", until: str = "") -> None:
        self.actor, self.action, self.target = clip(actor, 80), clip(action, 60), clip(target, 200)
        self.since, self.until = clip(since, 10), clip(until, 10)
        self.bad: str | None = None
        self.start = self._day(self.since)
        self.end = self._day(self.until)

    def _day(self, text: str) -> datetime | None:
        if not text:
            return None
        try:
            return datetime.combine(date.fromisoformat(text), time(0), display_zone())
        except ValueError:
            self.bad = text
            return None

    def apply(self, query: Select[Any]) -> Select[Any]:
        entry = models.AuditEntry
        if self.actor:
            query = query.where(entry.actor == self.actor.lower())
        if self.action:
            query = query.where(entry.action.startswith(self.action, autoescape=True))
        if self.target:
            if self.target.endswith(("*", ":")):
                query = query.where(entry.target.startswith(self.target.rstrip("*"), autoescape=True))
            else:
                query = query.where(entry.target == self.target)
        if self.start is not None:
            query = query.where(entry.at >= self.start)
        if self.end is not None:
            query = query.where(entry.at < self.end + timedelta(days=1))
        return query

    def query_string(self) -> str:
        from urllib.parse import urlencode

        pairs = {"actor": self.actor, "action": self.action, "target": self.target, "from": self.since,
                 "to": self.until}
        return urlencode({k: v for k, v in pairs.items() if v})

    @property
    def any(self) -> bool:
        return bool(self.actor or self.action or self.target or self.since or self.until)


def _row(entry: models.AuditEntry) -> dict[str, Any]:
    return {"at": entry.at, "actor": entry.actor, "action": entry.action, "target": entry.target,
            "before": entry.before, "after": entry.after, "detail": entry.detail}


def changes(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """before → after per field, for the page (``entry`` as the reader sees it: see :func:`_row`)."""
    before, after = entry["before"] or {}, entry["after"] or {}
    keys = list(dict.fromkeys([*before, *after]))
    return [{"field": k, "before": before.get(k), "after": after.get(k), "had": k in before, "has": k in after}
            for k in keys]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Admin, db_url: DbUrl, actor: str = "", action: str = "", target: str = "",
               since: Annotated[str, Query(alias="from")] = "", until: Annotated[str, Query(alias="to")] = "",
               page: str = "") -> HTMLResponse:
    """Who did what, newest first, filtered; each change before → after (admins, and auditors with personal
    data masked)."""
    filters = Filters(actor, action, target, since, until)
    with session_factory(db_url)() as db:
        query = filters.apply(select(models.AuditEntry))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        reader = Reader(user.role, user.id)
        entries = [audit_view(reader, _row(e)) for e in
                   db.scalars(query.order_by(models.AuditEntry.id.desc()).offset(pager.offset).limit(pager.per))]
    error = (_("The date “%(value)s” is not valid: use YYYY-MM-DD.") % {"value": filters.bad}
             if filters.bad else None)
    return render(request, user, "audit/audit.html", status_code=422 if error else 200,
                  entries=[{"entry": e, "changes": changes(e)} for e in entries], pager=pager, f=filters,
                  total=total, error=error, actor=filters.actor, action=filters.action)


def _cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _rows(db_url: str, filters: Filters, reader: Reader) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "target", "before", "after", "detail"])
    yield "\ufeff" + out.getvalue()
    with session_factory(db_url)() as db:
        query = filters.apply(select(models.AuditEntry)).order_by(models.AuditEntry.id.desc()).limit(EXPORT_LIMIT)
        for found in db.scalars(query.execution_options(yield_per=1000)):
            entry = audit_view(reader, _row(found))
            out.seek(0)
            out.truncate()
            writer.writerow([entry["at"].astimezone(display_zone()).isoformat(timespec="seconds"), entry["actor"],
                             entry["action"], entry["target"] or "", _cell(entry["before"]), _cell(entry["after"]),
                             _cell(entry["detail"] or None)])
            yield out.getvalue()


@router.get("/audit.csv")
def audit_export(user: Admin, db_url: DbUrl, actor: str = "", action: str = "", target: str = "",
                 since: Annotated[str, Query(alias="from")] = "", until: Annotated[str, Query(alias="to")] = ""
                 ) -> StreamingResponse:
    """The filtered entries as CSV (UTF-8 with a BOM for Excel; times in the display time zone), newest first."""
    filters = Filters(actor, action, target, since, until)
    if filters.bad:
        raise ApiError(422, Msg("the date %(value)s is not valid", value=repr(filters.bad)), Msg("use YYYY-MM-DD"),
                       "from")
    stamp = datetime.now(display_zone()).strftime("%Y%m%d-%H%M")
    return StreamingResponse(_rows(db_url, filters, Reader(user.role, user.id)), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})


@api.get("/audit")
def audit_log(request: Request, response: Response,
              user: Annotated[User, Depends(require(*ADMIN, *AUDIT_READERS))], db_url: DbUrl,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
              actor: str = "", action: str = "", target: str = "",
              since: Annotated[str, Query(alias="from", description="YYYY-MM-DD, display time zone")] = "",
              until: Annotated[str, Query(alias="to", description="YYYY-MM-DD, inclusive")] = ""
              ) -> list[dict[str, Any]]:
    """The newest audit entries, filtered like the page (admins, and auditors with personal data masked);
    ``X-Total-Count`` says how many match."""
    reader = Reader(user.role, user.id)
    filters = Filters(actor, action, target, since, until)
    if filters.bad:
        raise ApiError(422, Msg("the date %(value)s is not valid", value=repr(filters.bad)), Msg("use YYYY-MM-DD"),
                       "from")
    with session_factory(db_url)() as db:
        query = filters.apply(select(models.AuditEntry))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(models.AuditEntry.id.desc()).offset(offset).limit(limit))
        response.headers["X-Total-Count"] = str(total)
        return [audit_view(reader, {**_row(a), "at": a.at.isoformat()}) for a in rows]
