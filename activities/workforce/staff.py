"""WeCom staff members (成员) in Tideflow: who they are, whom they report to, whether they left, which
Tideflow user works their tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.workforce.common import WorkforceError
from connectors.wecom.transfer import Member
from engine.db import models
from engine.db import workforce_models as wf
from engine.text import Msg


def upsert_member(db: Session, connector_id: str, member: Member, now: datetime) -> wf.WeComStaff:
    """Record what user/get says of a member; a member WeCom reports as left (status 5) becomes resigned."""
    row = db.get(wf.WeComStaff, (connector_id, member.userid))
    if row is None:
        row = wf.WeComStaff(connector_id=connector_id, userid=member.userid, status="active", departments=[],
                            leaders=[], updated_at=now)
        db.add(row)
    row.name = member.name or row.name or member.userid
    row.departments = list(member.departments)
    row.leaders = list(member.direct_leader)
    if member.resigned and row.status != "resigned":
        row.status, row.resigned_at = "resigned", now
    row.updated_at = now
    db.flush()
    return row


def ensure_staff(db: Session, connector_id: str, userid: str, now: datetime, name: str = "") -> wf.WeComStaff:
    row = db.get(wf.WeComStaff, (connector_id, userid))
    if row is None:
        row = wf.WeComStaff(connector_id=connector_id, userid=userid, name=name or userid, status="active",
                            departments=[], leaders=[], updated_at=now)
        db.add(row)
        db.flush()
    return row


def mark_departed(db: Session, connector_id: str, userid: str, now: datetime) -> wf.WeComStaff:
    row = ensure_staff(db, connector_id, userid, now)
    if row.status != "resigned":
        row.status, row.resigned_at, row.updated_at = "resigned", now, now
    return row


def seen_active(db: Session, connector_id: str, userid: str, at: datetime) -> None:
    """A member was active (wrote a message): WeCom's "logged in within a year" rule is judged from this."""
    row = db.get(wf.WeComStaff, (connector_id, userid))
    if row is not None and (row.last_active_at is None or row.last_active_at < at):
        row.last_active_at = at


def user_id_of(db: Session, connector_id: str, userid: str) -> int | None:
    """The Tideflow user who is this member: the staff row's link, else the agent whose contact names them."""
    row = db.get(wf.WeComStaff, (connector_id, userid))
    if row is not None and row.user_id is not None:
        return row.user_id
    for agent in db.scalars(select(models.Agent)):
        if str((agent.contact or {}).get("wecom_userid") or "") == userid:
            return agent.user_id
    return None


def link_user(db: Session, connector_id: str, userid: str, user_id: int | None, now: datetime) -> wf.WeComStaff:
    if user_id is not None and db.get(models.User, user_id) is None:
        raise WorkforceError(Msg("user %(user_id)s does not exist", user_id=user_id),
                             Msg("pick an existing Tideflow user"), "user_id", 422)
    row = ensure_staff(db, connector_id, userid, now)
    row.user_id, row.updated_at = user_id, now
    return row


def view(row: wf.WeComStaff) -> dict[str, Any]:
    return {"userid": row.userid, "name": row.name, "departments": list(row.departments or []),
            "leaders": list(row.leaders or []), "status": row.status,
            "resigned_at": row.resigned_at.isoformat() if row.resigned_at else None,
            "last_active_at": row.last_active_at.isoformat() if row.last_active_at else None,
            "customer_limit": row.customer_limit, "user_id": row.user_id}
