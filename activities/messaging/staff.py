"""Messages to staff members, not customers: WeCom app messages (应用消息, ``message/send``, document/path/90236)
from the connector's AgentId app.

This is the one home for telling a WeCom member something: compliance alerts to a member's leaders
(activities/workforce/compliance.py) and ticket SLA notices to an agent or a supervisor
(activities/tickets/service.py) both go through :func:`send_app_message`. Customer channels
(``action.send_message``, activities/messaging/channels.py) deliver to a *customer's* identities — an
external_userid, through a mass-send task a staff member confirms — and cannot reach staff: a member is
reached by their WeCom userid, from the self-built app named by the connector's ``agent_id`` with that app's
secret (``app_secret``, else ``secret``).

The outcome is a status the caller records: ``sent``; ``retry`` (WeCom busy or rate-limited: try again
later, nothing was sent); ``skipped: …`` (nobody to tell, no WeCom connector, no AgentId) or ``failed: …``
(WeCom refused for good, or none of the members is in the app's visible range).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.wecom.api_errors import ApiError
from connectors.wecom.app_message import send_text
from connectors.wecom.connector import app_client_for
from engine import connectors
from engine.connectors import LoadedConnector
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory


@dataclass(frozen=True)
class StaffMessage:
    """What became of an app message: ``status`` (see the module) and the members WeCom could not reach."""

    status: str
    invalid_users: tuple[str, ...] = ()

    @property
    def retry(self) -> bool:
        return self.status == "retry"


def wecom_connector(db: Session, connector_id: str | None = None) -> LoadedConnector | None:
    """The enabled WeCom connector ``connector_id``, or the first enabled one (by id) when none is named."""
    if connector_id:
        loaded = connectors.load(db, connector_id)
        return loaded if loaded is not None and loaded.kind == "wecom" else None
    return connectors.for_channel(db, "wecom")


def wecom_member_of(db: Session, user_id: int) -> tuple[str | None, str] | None:
    """The WeCom member a Tideflow user is, as (connector id or None for any, userid): the active staff row linked
    to them (workforce › staff, the sidebar's sign-in), else the ``wecom_userid`` of their agent contact (ticket
    agents); None when neither says."""
    linked = db.execute(select(wf.WeComStaff.connector_id, wf.WeComStaff.userid).where(
        wf.WeComStaff.user_id == user_id, wf.WeComStaff.status == "active")
        .order_by(wf.WeComStaff.connector_id, wf.WeComStaff.userid)).first()
    if linked is not None:
        return str(linked[0]), str(linked[1])
    agent = db.get(models.Agent, user_id)
    found = str((agent.contact or {}).get("wecom_userid") or "") if agent is not None else ""
    return (None, found) if found else None


def send_app_message(database_url: str | None, userids: Sequence[str], text: str,
                     connector_id: str | None = None) -> StaffMessage:
    """Send ``text`` to these WeCom members from the connector's AgentId app (at most 1,000 at once, text cut
    to WeCom's 2,048 bytes by :func:`connectors.wecom.app_message.send_text`)."""
    users = list(dict.fromkeys(u for u in userids if u))
    if not users:
        return StaffMessage("skipped: nobody to tell (no WeCom userid)")
    with session_factory(database_url)() as db:
        loaded = wecom_connector(db, connector_id)
    if loaded is None:
        return StaffMessage("skipped: no enabled WeCom connector")
    agent_id = getattr(loaded.settings, "agent_id", None)
    if agent_id is None:
        return StaffMessage("skipped: the WeCom connector has no AgentId for app messages")
    try:
        result = send_text(app_client_for(loaded.settings, loaded.secrets), int(agent_id), users, text)
    except ApiError as exc:
        if exc.retryable:
            return StaffMessage("retry")
        return StaffMessage(f"failed: errcode {exc.errcode}" if exc.errcode is not None else "failed: rejected")
    invalid = tuple(result.invalid_users)
    if len(set(invalid)) >= len(users):
        return StaffMessage("failed: no reachable recipient", invalid)
    return StaffMessage("sent", invalid)
