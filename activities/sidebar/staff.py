"""Who a WeCom member is in Tideflow, for the sidebar's sign-in: the member's row in workforce's
``wecom_staff`` (:mod:`activities.workforce.staff`, one home for WeCom members) names the Tideflow user — set
by an admin here, or by ops on the agent (``contact.wecom_userid``). The sidebar's WeCom sign-in (OAuth code →
UserID, connectors/wecom/jsapi.py) then opens a web session for that user, with that user's role — nothing
more.

Refused, with a reason the page shows: a visitor who is not a member of the corp (WeCom answers an
openid), a member nobody linked, a disabled user, and a user whose role does not read customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.workforce import staff as members
from engine.auth import AuthError, audit, find_user, has_role, open_session
from engine.db import models
from engine.db import workforce_models as wf
from engine.text import Msg

#: who may use the sidebar: the roles that read customers in the web app (and admin)
SIDEBAR_ROLES = ("marketer", "ops", "agent")


class SignInRefused(AuthError):
    """WeCom said who the visitor is, and that person may not use the sidebar; ``fix`` says what to do."""

    def __init__(self, message: Msg, fix: Msg) -> None:
        super().__init__(message, fix)


def _check_userid(userid: str) -> str:
    userid = userid.strip()
    if not userid or len(userid) > 64 or any(ch.isspace() for ch in userid):
        raise AuthError(Msg("the WeCom UserID must be 1–64 characters without spaces (通讯录 › 成员 › "
                            "账号)"))
    return userid


def link(db: Session, by: models.User, connector_id: str, userid: str, username: str,
         now: datetime) -> wf.WeComStaff:
    """Member ``userid`` of the WeCom connector signs in as the Tideflow user ``username`` (replacing a link)."""
    userid = _check_userid(userid)
    user = find_user(db, username)
    if user is None:
        raise AuthError(Msg("no Tideflow user named '%(username)s'", username=username))
    before = db.get(wf.WeComStaff, (connector_id, userid))
    replaced = before.user_id if before is not None else None
    row = members.link_user(db, connector_id, userid, user.id, now)
    db.flush()
    audit(db, by, "wecom_staff.linked", f"wecom:{connector_id}/{userid}",
          {"user": user.username, "replaced_user_id": replaced})
    return row


def unlink(db: Session, by: models.User, connector_id: str, userid: str, now: datetime) -> bool:
    """The member no longer signs in as anyone (their member record stays). False when nobody was linked."""
    row = db.get(wf.WeComStaff, (connector_id, userid))
    if row is None or row.user_id is None:
        return False
    audit(db, by, "wecom_staff.unlinked", f"wecom:{connector_id}/{userid}", {"user_id": row.user_id})
    members.link_user(db, connector_id, userid, None, now)
    db.flush()
    return True


def links(db: Session, connector_id: str) -> list[dict[str, Any]]:
    query = (select(wf.WeComStaff, models.User).join(models.User, models.User.id == wf.WeComStaff.user_id)
             .where(wf.WeComStaff.connector_id == connector_id).order_by(wf.WeComStaff.userid))
    return [{"connector_id": s.connector_id, "userid": s.userid, "name": s.name, "username": u.username,
             "role": u.role, "disabled": u.disabled_at is not None, "resigned": s.status == "resigned"}
            for s, u in db.execute(query)]


def sign_in(db: Session, connector_id: str, userid: str | None, now: datetime) -> tuple[models.User, str, str]:
    """Open a web session for the Tideflow user this WeCom member is: (user, session, csrf)."""
    if not userid:
        raise SignInRefused(Msg("WeCom says you are not a member of this corp"),
                            Msg("open the sidebar from the WeCom client of the corp, signed in as a "
                                "member"))
    user_id = members.user_id_of(db, connector_id, userid)
    user = db.get(models.User, user_id) if user_id is not None else None
    if user is None:
        audit(db, "anonymous", "sidebar.sign_in_refused", f"wecom:{connector_id}/{userid}", {"why": "not linked"},
              at=now)
        raise SignInRefused(Msg("the WeCom member %(userid)s is not linked to a Tideflow user",
                                userid=userid),
                            Msg("ask an admin to link the WeCom UserID %(userid)s to your Tideflow "
                                "account",
                                userid=userid))
    member = db.get(wf.WeComStaff, (connector_id, userid))
    if member is not None and member.status == "resigned":
        raise SignInRefused(Msg("the WeCom member %(userid)s has left the corp", userid=userid), Msg("ask an admin"))
    if user.disabled_at is not None:
        raise SignInRefused(Msg("the Tideflow user %(username)s is disabled",
                                username=user.username), Msg("ask an admin to enable the account"))
    if not has_role(user, *SIDEBAR_ROLES):
        raise SignInRefused(Msg("the sidebar needs the role %(roles)s (or admin); %(username)s is %(role)s",
                                roles=", ".join(SIDEBAR_ROLES), username=user.username, role=user.role),
                            Msg("ask an admin for a role that reads customers"))
    session_token, csrf = open_session(db, user, now)
    audit(db, user, "login", f"user:{user.username}", {"via": "wecom", "wecom_userid": userid}, at=now)
    return user, session_token, csrf
