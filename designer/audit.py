"""The audit log: who did what, newest first — ``GET /audit`` (the page) and ``GET /api/audit`` (JSON),
admins only (the API also answers any logged-in user with the ``admin`` role check of :func:`require`).

A small area: its routes and its strings live in this one module.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from designer import i18n
from designer.auth import get_db_url, require
from designer.pages import ADMIN, Pager, PageRoute, clip, page_number, page_user, render
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.read_policy import Reader, audit_view

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api = APIRouter(prefix="/api", tags=["ops"])
#: who reads the audit log: admins and auditors (engine/read_policy.py); auditors see personal data masked
AUDIT_READERS = ("auditor",)
Admin = Annotated[User, Depends(page_user(*ADMIN, *AUDIT_READERS))]
DbUrl = Annotated[str, Depends(get_db_url)]

i18n.add({
    "zh-CN": {
        "au.title": "审计日志", "au.actor": "操作人", "au.action": "操作", "au.target": "对象", "au.detail": "详情",
        "au.empty": "没有审计记录。", "au.actor.q": "按操作人筛选", "au.action.q": "按操作筛选（前缀，例如 flow.）",
    },
    "en": {
        "au.title": "Audit log", "au.actor": "Actor", "au.action": "Action", "au.target": "Target",
        "au.detail": "Detail", "au.empty": "No audit entries.", "au.actor.q": "Filter by actor",
        "au.action.q": "Filter by action (prefix, e.g. flow.)",
    },
})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Admin, db_url: DbUrl, actor: str = "", action: str = "",
               page: str = "") -> HTMLResponse:
    """Who did what, newest first (admins, and auditors with personal data masked)."""
    actor, action = clip(actor, 80), clip(action, 60)
    with session_factory(db_url)() as db:
        query = select(models.AuditEntry)
        if actor:
            query = query.where(models.AuditEntry.actor == actor.lower())
        if action:
            query = query.where(models.AuditEntry.action.startswith(action, autoescape=True))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        reader = Reader(user.role, user.id)
        entries = [audit_view(reader, {"at": a.at, "actor": a.actor, "action": a.action, "target": a.target,
                                       "detail": a.detail})
                   for a in db.scalars(query.order_by(models.AuditEntry.id.desc()).offset(pager.offset)
                                       .limit(pager.per))]
    return render(request, user, "audit/audit.html", entries=entries, pager=pager, actor=actor, action=action)


@api.get("/audit")
def audit_log(request: Request, user: Annotated[User, Depends(require(*ADMIN, *AUDIT_READERS))], db_url: DbUrl,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """The newest audit entries (admins and auditors, like the page; auditors see personal data masked)."""
    reader = Reader(user.role, user.id)
    with session_factory(db_url)() as db:
        rows = db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(limit))
        return [audit_view(reader, {"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "target": a.target,
                                    "detail": a.detail}) for a in rows]
