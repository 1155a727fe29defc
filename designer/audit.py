"""The audit log: who did what, newest first — ``GET /audit`` (the page) and ``GET /api/audit`` (JSON),
admins only (the API also answers any logged-in user with the ``admin`` role check of :func:`require`).

A small area: its routes live in this one module (its page: ``templates/audit/audit.html``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from designer.auth import get_db_url, require
from designer.pages import ADMIN, Pager, PageRoute, clip, page_number, page_user, render
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(prefix="/api", tags=["ops"])
Admin = Annotated[User, Depends(page_user(*ADMIN))]
DbUrl = Annotated[str, Depends(get_db_url)]



@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Admin, db_url: DbUrl, actor: str = "", action: str = "",
               page: str = "") -> HTMLResponse:
    """Who did what, newest first (admins only)."""
    actor, action = clip(actor, 80), clip(action, 60)
    with session_factory(db_url)() as db:
        query = select(models.AuditEntry)
        if actor:
            query = query.where(models.AuditEntry.actor == actor.lower())
        if action:
            query = query.where(models.AuditEntry.action.startswith(action, autoescape=True))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        entries = list(db.scalars(query.order_by(models.AuditEntry.id.desc()).offset(pager.offset)
                                  .limit(pager.per)))
    return render(request, user, "audit/audit.html", entries=entries, pager=pager, actor=actor, action=action)


@api.get("/audit")
def audit_log(request: Request, user: Annotated[User, Depends(require(*ADMIN))], db_url: DbUrl,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """The newest audit entries (admins only, like the page)."""
    with session_factory(db_url)() as db:
        rows = db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(limit))
        return [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "target": a.target,
                 "detail": a.detail} for a in rows]
