"""The overview page (``/``): every flow with its journeys per status, and the latest messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from designer import reading
from designer.auth import get_db_url, require
from designer.pages import render
from engine.db import models
from engine.db.models import User
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory
from engine.pii import mask_text

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: Annotated[User, Depends(require())],
         db_url: Annotated[str, Depends(get_db_url)]) -> HTMLResponse:
    with session_factory(db_url)() as db:
        flows = db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.kind, models.FlowRecord.id)).all()
        counts: dict[tuple[str, str], int] = {
            (f, s): n for f, s, n in db.execute(select(models.Journey.flow_id, models.Journey.status, func.count())
                                                .group_by(models.Journey.flow_id, models.Journey.status)).all()}
        messages = reading.messages_for(
            db, reading.reader_of(db, user), db.scalars(select(models.Message).order_by(models.Message.id.desc())
                                                        .limit(20)),
            lambda m: {"created_at": m.created_at, "customer_id": m.customer_id, "channel": m.channel,
                       "content": mask_text(m.content), "status": m.status})
        # admins are told when work kept failing and waits for them in the quarantine (/quarantine)
        quarantined = int(db.scalar(select(func.count()).select_from(QuarantineEntry)
                                    .where(QuarantineEntry.status == "open")) or 0) if user.role == "admin" else 0
    return render(request, user, "home.html", flows=flows, counts=counts, messages=messages, quarantined=quarantined)
