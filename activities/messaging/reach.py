"""Can a message reach this customer on that channel? And which channel is the customer's own?

A channel delivers only when it is set up (a connector that delivers it is configured and enabled, or the
channel needs none: ``dry-run``) and the customer has the address it sends to (a WeCom external contact id,
a WeChat openid, a phone number, an email address). The ticket console asks before the agent writes a reply;
the reply's delivery asks before it sends; the refund hook picks the customer's own channel with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.messaging import channels
from engine import connectors
from engine.db import models

#: the identity kind each customer channel sends to
ADDRESS: Final[dict[str, str]] = {"wecom": "wecom_external_userid", "wechat_oa": "wechat_openid", "sms": "phone",
                                  "email": "email"}
#: which of a customer's channels answers them, best first (a chat before a text message before a mail)
PREFERENCE: Final[tuple[str, ...]] = ("wecom", "wechat_oa", "sms", "email")
#: a ticket whose customer has no address on any channel
NO_CHANNEL: Final = "none"


@dataclass(frozen=True)
class Reach:
    """``ok``, or why not: ``no_customer``, ``no_channel`` (the customer has no address on any channel),
    ``not_configured`` (the channel is not set up), ``no_address`` (the customer has none for it)."""

    channel: str
    reason: str

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    @property
    def status(self) -> str:
        """The message status a send that cannot go out is recorded with."""
        return {"ok": "sent", "no_customer": "skipped: no customer", "no_channel": "skipped: no channel",
                "not_configured": "skipped: channel not configured",
                "no_address": "skipped: no address"}[self.reason]


def configured(db: Session, channel: str) -> bool:
    """The channel can deliver at all (without naming a customer)."""
    if channel == "dry-run" or channels.registered(channel):
        return True
    return connectors.for_channel(db, channel) is not None


def addresses(db: Session, customer_id: str) -> set[str]:
    """The identity kinds a customer has."""
    return set(db.scalars(select(models.Identity.kind).where(models.Identity.customer_id == customer_id)))


def reach(db: Session, customer_id: str | None, channel: str) -> Reach:
    """Whether a message to ``customer_id`` on ``channel`` can be delivered, and if not, why."""
    if not customer_id:
        return Reach(channel, "no_customer")
    if channel == NO_CHANNEL:
        return Reach(channel, "no_channel")
    if not configured(db, channel):
        return Reach(channel, "not_configured")
    wanted = ADDRESS.get(channel)
    if wanted is not None and wanted not in addresses(db, customer_id):
        return Reach(channel, "no_address")
    return Reach(channel, "ok")


def customer_channel(db: Session, customer_id: str | None) -> str:
    """The customer's own channel: the first (by :data:`PREFERENCE`) they have an address on that is set up;
    else the first they have an address on (the console then warns that it is not set up); else
    :data:`NO_CHANNEL`."""
    if not customer_id:
        return NO_CHANNEL
    have = addresses(db, customer_id)
    theirs = [c for c in PREFERENCE if ADDRESS[c] in have]
    for channel in theirs:
        if configured(db, channel):
            return channel
    return theirs[0] if theirs else NO_CHANNEL
