"""Who a WeCom member is in Tideflow: an admin links a corp's UserID to a Tideflow user; the sidebar's
WeCom sign-in (OAuth code → UserID, connectors/wecom/jsapi.py) then opens a web session for that user,
with that user's role — nothing more.

Refused, with a reason the page shows: a visitor who is not a member of the corp (WeCom answers an
openid), a member nobody linked, a disabled user, and a user whose role does not read customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.auth import AuthError, audit, find_user, has_role, open_session
from engine.db import models
from engine.db.sidebar_models import WeComStaff

#: who may use the sidebar: the roles that read customers in the web app (and admin)
SIDEBAR_ROLES = ("marketer", "ops", "agent")


class SignInRefused(AuthError):
    """WeCom said who the visitor is, and that person may not use the sidebar; ``fix`` says what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def link(db: Session, by: models.User, corp_id: str, userid: str, username: str) -> WeComStaff:
    """Link WeCom member ``userid`` of ``corp_id`` to the Tideflow user ``username`` (replacing a link)."""
    userid = userid.strip()
    if not userid or len(userid) > 64 or any(ch.isspace() for ch in userid):
        raise AuthError("the WeCom UserID must be 1–64 characters without spaces (通讯录 › 成员 › 账号)")
    user = find_user(db, username)
    if user is None:
        raise AuthError(f"no Tideflow user named {username!r}")
    row = db.get(WeComStaff, (corp_id, userid))
    before = row.user_id if row else None
    if row is None:
        row = WeComStaff(corp_id=corp_id, userid=userid, user_id=user.id, created_by=by.username)
        db.add(row)
    else:
        row.user_id, row.created_by = user.id, by.username
    db.flush()
    audit(db, by, "wecom_staff.linked", f"wecom:{corp_id}/{userid}",
          {"user": user.username, "replaced_user_id": before})
    return row


def unlink(db: Session, by: models.User, corp_id: str, userid: str) -> bool:
    row = db.get(WeComStaff, (corp_id, userid))
    if row is None:
        return False
    audit(db, by, "wecom_staff.unlinked", f"wecom:{corp_id}/{userid}", {"user_id": row.user_id})
    db.delete(row)
    db.flush()
    return True


def links(db: Session, corp_id: str | None = None) -> list[dict[str, Any]]:
    query = select(WeComStaff, models.User).join(models.User, models.User.id == WeComStaff.user_id)
    if corp_id:
        query = query.where(WeComStaff.corp_id == corp_id)
    return [{"corp_id": s.corp_id, "userid": s.userid, "username": u.username, "role": u.role,
             "disabled": u.disabled_at is not None} for s, u in db.execute(query.order_by(WeComStaff.userid))]


def sign_in(db: Session, corp_id: str, userid: str | None, now: datetime) -> tuple[models.User, str, str]:
    """Open a web session for the Tideflow user linked to this WeCom member: (user, session, csrf)."""
    if not userid:
        raise SignInRefused("WeCom says you are not a member of this corp",
                            "open the sidebar from the WeCom client of the corp, signed in as a member")
    row = db.get(WeComStaff, (corp_id, userid))
    user = db.get(models.User, row.user_id) if row else None
    if user is None:
        audit(db, "anonymous", "sidebar.sign_in_refused", f"wecom:{corp_id}/{userid}", {"why": "not linked"}, at=now)
        raise SignInRefused(f"the WeCom member {userid} is not linked to a Tideflow user",
                            f"ask an admin to link the WeCom UserID {userid} to your Tideflow account")
    if user.disabled_at is not None:
        raise SignInRefused(f"the Tideflow user {user.username} is disabled", "ask an admin to enable the account")
    if not has_role(user, *SIDEBAR_ROLES):
        raise SignInRefused(f"the sidebar needs the role {', '.join(SIDEBAR_ROLES)} (or admin); "
                            f"{user.username} is {user.role}", "ask an admin for a role that reads customers")
    session_token, csrf = open_session(db, user, now)
    audit(db, user, "login", f"user:{user.username}", {"via": "wecom", "wecom_userid": userid}, at=now)
    return user, session_token, csrf
