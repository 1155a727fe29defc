"""Customer groups (客户群) in Tideflow: synced from WeCom, and their changes as customer events.

WeCom is the truth: a sync reads ``groupchat/list`` and ``groupchat/get`` and compares with what
Tideflow stored. The differences become events for each **customer** (external member) concerned, so
journeys can greet new members or react to churn:

=============================  =================================================================
``wecom.group_created``        a group that appeared after the first sync, for its customers
``wecom.group_member_joined``  a customer joined (payload ``join_scene``: 1 invited, 2 link, 3 QR)
``wecom.group_member_left``    a customer left or was removed
``wecom.group_owner_changed``  the owner changed (a handover, or in the WeCom client)
``wecom.group_dismissed``      the group was dismissed, for everyone who was in it
=============================  =================================================================

The ``change_external_chat`` callback only triggers the sync of that one group (the callback itself
carries no join times and is not sent for changes made through the API); the periodic sync catches
whatever a lost callback missed. Event ids derive from the change (member + join time, or the group's
``member_version``), so the same change seen twice is stored once. The first sync of a corp imports
what exists without events. Each customer's ``wecom_groups`` attribute lists the groups they are in,
so broadcast segments can target group members (``"wrAbC" in customer.wecom_groups``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from activities.workforce.common import customer_for, is_external
from connectors.wecom.api_errors import ApiError
from connectors.wecom.client import WeComClient
from connectors.wecom.groupchat import GroupChat, get_group, list_groups
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction

#: groupchat/get errcode for a chat that does not exist (any more)
GONE_ERRCODES = frozenset({40050, 90501})


def _when(seconds: int) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _event(kind: str, key: str, external: str, at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"grp:{key}"[:120], "type": f"wecom.{kind}", "customer": {"wecom_external_userid": external},
            "occurred_at": at.isoformat(), "payload": payload}


def _set_groups_attribute(db: Session, customer_id: str, chat_id: str, member: bool) -> None:
    customer = db.get(models.Customer, customer_id)
    if customer is None:
        return
    attributes = dict(customer.attributes or {})
    groups = [g for g in attributes.get("wecom_groups") or [] if g != chat_id]
    if member:
        groups.append(chat_id)
    attributes["wecom_groups"] = sorted(groups)
    customer.attributes = attributes


def sync_group(db: Session, connector_id: str, chat_id: str, chat: GroupChat | None, now: datetime, *,
               initial: bool = False) -> list[dict[str, Any]]:
    """Bring one group up to date (``chat`` None: it is gone); the customer events of the changes."""
    row = db.get(wf.WeComGroup, (connector_id, chat_id))
    stored = {m.userid: m for m in db.scalars(select(wf.WeComGroupMember).where(
        wf.WeComGroupMember.connector_id == connector_id, wf.WeComGroupMember.chat_id == chat_id))}
    events: list[dict[str, Any]] = []
    if chat is None:
        if row is None or row.status == "dismissed":
            return []
        row.status, row.dismissed_at, row.synced_at, row.members_count = "dismissed", now, now, 0
        for member in stored.values():
            if member.type == 2 and member.customer_id:
                _set_groups_attribute(db, member.customer_id, chat_id, False)
                events.append(_event("group_dismissed", f"{chat_id}:dismissed:{member.userid}", member.userid, now,
                                     {"chat_id": chat_id, "group_name": row.name, "owner": row.owner_userid}))
        db.execute(delete(wf.WeComGroupMember).where(wf.WeComGroupMember.connector_id == connector_id,
                                                     wf.WeComGroupMember.chat_id == chat_id))
        return events
    first = row is None
    previous_owner = row.owner_userid if row is not None else ""
    if row is None:
        row = wf.WeComGroup(connector_id=connector_id, chat_id=chat_id, created_at=_when(chat.create_time))
        db.add(row)
    row.name, row.owner_userid, row.notice = chat.name[:200], chat.owner, chat.notice
    row.status, row.member_version, row.synced_at = "active", chat.member_version, now
    row.members_count = len(chat.members)
    version = chat.member_version or str(int(now.timestamp()))
    base = {"chat_id": chat_id, "group_name": chat.name, "owner": chat.owner}
    current = {m.userid: m for m in chat.members}
    for userid, live in current.items():
        existing = stored.get(userid)
        customer_id = customer_for(db, userid) if live.external else None
        if existing is None:
            db.add(wf.WeComGroupMember(connector_id=connector_id, chat_id=chat_id, userid=userid, type=live.type,
                                       customer_id=customer_id, join_time=_when(live.join_time),
                                       join_scene=live.join_scene))
            if customer_id:
                _set_groups_attribute(db, customer_id, chat_id, True)
                if initial:
                    continue
                joined = _when(live.join_time) or now
                if first:
                    events.append(_event("group_created", f"{chat_id}:created:{userid}", userid,
                                         _when(chat.create_time) or now, base))
                else:
                    events.append(_event("group_member_joined", f"{chat_id}:join:{userid}:{live.join_time}", userid,
                                         joined, {**base, "join_scene": live.join_scene,
                                                  "invitor": live.invitor}))
    for userid, gone in stored.items():
        if userid in current:
            continue
        db.delete(gone)
        if gone.type == 2 and gone.customer_id:
            _set_groups_attribute(db, gone.customer_id, chat_id, False)
            events.append(_event("group_member_left", f"{chat_id}:left:{userid}:{version}", userid, now, base))
    if not first and previous_owner and previous_owner != chat.owner:
        for userid, live in current.items():
            if live.external:
                events.append(_event("group_owner_changed", f"{chat_id}:owner:{chat.owner}:{version}", userid, now,
                                     {**base, "previous_owner": previous_owner}))
    db.flush()
    return events


def fetch(client: WeComClient, chat_id: str) -> GroupChat | None:
    """groupchat/get, or None when the group does not exist any more."""
    try:
        return get_group(client, chat_id)
    except ApiError as exc:
        if exc.errcode in GONE_ERRCODES:
            return None
        raise


def sync_one(database_url: str | None, client: WeComClient, connector_id: str, chat_id: str,
             now: datetime) -> list[dict[str, Any]]:
    chat = fetch(client, chat_id)
    with transaction(database_url) as db:
        return sync_group(db, connector_id, chat_id, chat, now)


def sync_all(database_url: str | None, client: WeComClient, connector_id: str, now: datetime) -> dict[str, Any]:
    """Every group of the corp: read, compared, stored; groups no longer listed are checked and dismissed."""
    with session_factory(database_url)() as db:
        known = set(db.scalars(select(wf.WeComGroup.chat_id).where(wf.WeComGroup.connector_id == connector_id,
                                                                   wf.WeComGroup.status == "active")))
        initial = not db.scalar(select(func.count()).select_from(wf.WeComGroup).where(
            wf.WeComGroup.connector_id == connector_id))
    listed = [chat_id for chat_id, _ in list_groups(client)]
    events: list[dict[str, Any]] = []
    for chat_id in listed:
        chat = fetch(client, chat_id)
        with transaction(database_url) as db:
            events += sync_group(db, connector_id, chat_id, chat, now, initial=initial)
    for chat_id in sorted(known - set(listed)):
        events += sync_one(database_url, client, connector_id, chat_id, now)
    return {"groups": len(listed), "events": events}


def view(db: Session, connector_id: str, *, owner: str | None = None, limit: int = 200,
         offset: int = 0) -> list[dict[str, Any]]:
    query = select(wf.WeComGroup).where(wf.WeComGroup.connector_id == connector_id)
    if owner:
        query = query.where(wf.WeComGroup.owner_userid == owner)
    rows = db.scalars(query.order_by(wf.WeComGroup.status, wf.WeComGroup.name).offset(offset).limit(limit)).all()
    return [{"chat_id": g.chat_id, "name": g.name, "owner": g.owner_userid, "status": g.status,
             "members": g.members_count, "synced_at": g.synced_at.isoformat(),
             "dismissed_at": g.dismissed_at.isoformat() if g.dismissed_at else None} for g in rows]


def members_of(db: Session, connector_id: str, chat_ids: list[str]) -> dict[str, str]:
    """external_userid → customer id of the customers in these groups (broadcasts to group members)."""
    return {userid: str(cid) for userid, cid in db.execute(
        select(wf.WeComGroupMember.userid, wf.WeComGroupMember.customer_id).where(
            wf.WeComGroupMember.connector_id == connector_id, wf.WeComGroupMember.chat_id.in_(chat_ids),
            wf.WeComGroupMember.type == 2, wf.WeComGroupMember.customer_id.is_not(None)))
        if is_external(userid)}
