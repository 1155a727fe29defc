"""The growth event hook (``tideflow.event_hooks``): channel attribution, referral invites and friend
deletions, inside the transaction that stores the event — once per event, no outside I/O.

* ``wecom.contact_added`` with a ``state`` of a channel code: a :class:`ChannelAdd` row, first/last-touch
  attribution on the profile, the channel's tags, and ``payload.channel`` / ``payload.channel_name`` on
  the event, so journeys can filter ``event.payload.channel == "store-a"``. The welcome itself goes out
  from a journey (``action.channel_welcome``) within WeCom's 20 seconds.
* … with a referral participant's state: the same, plus the invite (activities/growth/campaigns.py)
  and ``payload.referral``.
* ``wecom.contact_deleted`` (either side): the add is marked removed; invites leave or are revoked.
* ``wechat.subscribed`` (``qrscene_…``) and ``wechat.qr_scanned`` (``SCAN``) of an OA parametric code:
  a scan is counted; a subscribe also attributes the follower.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from activities.growth import attribution, campaigns
from activities.growth.states import parse_state
from engine.customers import aliases
from engine.db import models
from engine.db.growth_models import ChannelAdd, GrowthChannel

log = logging.getLogger(__name__)


def _event_key(event: models.EventRecord) -> str:
    return f"{event.source}:{event.external_id}"


def _channel(db: Session, state: str, platform: str) -> GrowthChannel | None:
    if not state:
        return None
    return db.scalar(select(GrowthChannel).where(GrowthChannel.state == state, GrowthChannel.platform == platform,
                                                 GrowthChannel.status != "deleted"))


def _attribute(db: Session, customer_id: str, channel: GrowthChannel, event: models.EventRecord) -> None:
    customer = db.get(models.Customer, customer_id)
    if customer is None:
        return
    changes = attribution.touch(customer.attributes or {}, channel.key, event.occurred_at)
    if changes:
        customer.attributes = {**(customer.attributes or {}), **changes}
    have = set(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == customer_id)))
    for tag in channel.tags or []:
        if tag not in have:
            db.add(models.CustomerTag(customer_id=customer_id, tag=str(tag)[:80]))
            have.add(tag)


def _record_add(db: Session, channel: GrowthChannel, event: models.EventRecord, kind: str, user_id: str,
                welcome_code: str | None) -> ChannelAdd | None:
    key = _event_key(event)
    if db.scalar(select(ChannelAdd.id).where(ChannelAdd.event_key == key)) is not None:
        return None
    if kind != "add" or (not (channel.welcome or {}).get("text") and not (channel.welcome or {}).get("attachments")):
        status = "none"
    else:
        status = "pending" if welcome_code else "no_code"
    detail = "" if status != "no_code" else (
        "WeCom sent no WelcomeCode: the member has a welcome message set in the admin console, or already "
        "chatted with this customer; the channel's welcome was not sent")
    row = ChannelAdd(channel_id=channel.id, event_key=key, kind=kind, customer_id=str(event.customer_id),
                     user_id=user_id, added_at=event.occurred_at, welcome_status=status, welcome_detail=detail)
    db.add(row)
    if kind == "add" and user_id:
        channel.last_assigned = user_id
    return row


def _enrich(event: models.EventRecord, extra: dict[str, Any]) -> None:
    event.payload = {**(event.payload or {}), **extra}


def growth_from_event(db: Session, event: models.EventRecord) -> None:
    """Event hook: see the module docstring."""
    if not event.customer_id:
        return
    payload = dict(event.payload or {})
    if event.type == "wecom.contact_added":
        _contact_added(db, event, payload)
    elif event.type == "wecom.contact_deleted":
        user_id = str(payload.get("user_id") or "")
        ids = aliases(db, event.customer_id)
        query = update(ChannelAdd).where(ChannelAdd.customer_id.in_(ids), ChannelAdd.removed_at.is_(None),
                                         ChannelAdd.kind == "add")
        if user_id:
            query = query.where(ChannelAdd.user_id == user_id)
        db.execute(query.values(removed_at=event.occurred_at).execution_options(synchronize_session=False))
        campaigns.friend_deleted(db, event.customer_id, user_id, event.occurred_at)
    elif event.type in ("wechat.subscribed", "wechat.qr_scanned"):
        channel = _channel(db, str(payload.get("scene") or ""), "wechat_oa")
        if channel is None:
            return
        channel.scans = (channel.scans or 0) + 1
        kind = "subscribe" if event.type == "wechat.subscribed" else "scan"
        if _record_add(db, channel, event, kind, "", None) is not None:
            _attribute(db, event.customer_id, channel, event)
        _enrich(event, {"channel": channel.key, "channel_name": channel.name})


def _contact_added(db: Session, event: models.EventRecord, payload: dict[str, Any]) -> None:
    state = str(payload.get("state") or "")
    channel = _channel(db, state, "wecom")
    if channel is None:
        return
    user_id = str(payload.get("user_id") or "")
    added = _record_add(db, channel, event, "add", user_id, str(payload.get("welcome_code") or ""))
    if added is None:
        return
    _attribute(db, str(event.customer_id), channel, event)
    extra: dict[str, Any] = {"channel": channel.key, "channel_name": channel.name}
    parsed = parse_state(state)
    if parsed is not None and parsed.kind == "referral" and parsed.participant is not None:
        found = campaigns.participant_for_state(db, parsed.number, parsed.participant)
        if found is not None:
            campaign, participant = found
            invite = campaigns.register_invite(db, campaign, participant, invitee_id=str(event.customer_id),
                                               user_id=user_id, event_key=_event_key(event), event_id=event.id,
                                               added_at=event.occurred_at)
            if invite is not None:
                extra["referral"] = {"campaign": campaign.id, "participant": participant.id,
                                     "inviter": participant.customer_id, "invite": invite.id,
                                     "status": invite.status, "reason": invite.reason}
    _enrich(event, extra)
