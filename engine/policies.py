"""The send policy gate: consent, frequency caps across flows, quiet hours — in one place.

Every message goes through :func:`gate` on its way out (``action.send_message`` and
any channel a plugin adds). The outcome is one of

* ``sent`` — go ahead (the caller delivers and records it);
* ``skipped: no consent`` — the customer opted out of this channel (or of everything);
* ``skipped: capped`` — a promotional message over the cross-flow frequency cap;
* ``deferred: quiet hours`` — inside the quiet window in the customer's timezone; the
  journey waits (a durable timer) until the window ends and tries again.

The cap is checked and counted in the caller's transaction with the customer's row
locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write transactions are
serialised with ``BEGIN IMMEDIATE``), so two journeys racing cannot both pass it.
Consent is opt-out: a customer may be messaged until they unsubscribe (the event
``customer.unsubscribed``, or a channel's own unsubscribe event), which takes effect
for the very next send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db import models
from engine.durations import parse_duration
from engine.text import Msg
from engine.zones import zone_or

ALL_CHANNELS = "all"
#: events that withdraw consent, and for which channel (None: the channel in payload.channel, else all)
UNSUBSCRIBE_EVENTS: dict[str, str | None] = {
    "customer.unsubscribed": None,
    "wechat.unsubscribed": "wechat_oa",
    "wecom.contact_deleted": "wecom",
}
SUBSCRIBE_EVENTS: dict[str, str | None] = {"customer.subscribed": None, "wechat.subscribed": "wechat_oa",
                                           "wecom.contact_added": "wecom"}


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``count`` promotional messages per customer within ``window``, across all flows."""

    count: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> FrequencyCap:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(P\S+)\s*", text or "")
        if not match:
            raise ValueError(Msg("frequency cap '%(text)s' must look like '3/P7D' (count / ISO duration)",
                                 text=text))
        return cls(int(match.group(1)), parse_duration(match.group(2)))


@dataclass(frozen=True)
class SendPolicy:
    """The workspace's rules for promotional messages: the cross-flow cap and the default quiet hours
    (used by flows that set no quiet hours of their own). ``saved`` is False while nobody has saved the
    settings page: then the cap comes from ``TIDEFLOW_FREQUENCY_CAP`` and there are no default quiet hours."""

    cap: FrequencyCap | None
    quiet: tuple[str, str] | None = None
    saved: bool = False

    def flow_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A flow's settings as the gate applies them: its own quiet hours, else the workspace's. A flow
        whose quiet hours start and end at the same time has none (it opted out of the default)."""
        if settings.get("quiet_hours") or self.quiet is None:
            return settings
        return {**settings, "quiet_hours": {"start": self.quiet[0], "end": self.quiet[1]}}


def env_cap() -> FrequencyCap | None:
    from engine.settings import get_settings

    text = get_settings().frequency_cap
    return FrequencyCap.parse(text) if text else None


def current_policy(db: Session) -> SendPolicy:
    """The send policy in force: the saved one, else the environment's cap."""
    from engine.db.policy_models import SendPolicyRow

    row = db.get(SendPolicyRow, "workspace")
    if row is None:
        return SendPolicy(env_cap())
    cap = FrequencyCap(row.cap_count, parse_duration(row.cap_window)) if row.cap_count else None
    quiet = (row.quiet_start, row.quiet_end) if row.quiet_start and row.quiet_end else None
    return SendPolicy(cap, quiet, saved=True)


def save_policy(db: Session, actor: str, cap_count: int | None, cap_window: str,
                quiet: tuple[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Store the workspace's send policy; (before, after) for the audit log."""
    from engine.db.policy_models import SendPolicyRow

    parse_duration(cap_window)
    if cap_count is not None and cap_count < 1:
        raise ValueError(Msg("a frequency cap allows at least 1 message; turn the cap off instead"))
    for value in quiet or ():
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(Msg("quiet hours '%(value)s' must be HH:MM, e.g. 21:00",
                                 value=value))
    row = db.get(SendPolicyRow, "workspace")
    before = policy_view(current_policy(db))
    if row is None:
        row = SendPolicyRow(id="workspace")
        db.add(row)
    row.cap_count, row.cap_window = cap_count, cap_window
    row.quiet_start, row.quiet_end = quiet if quiet else (None, None)
    row.updated_by = actor
    from engine.db.base import utcnow

    row.updated_at = utcnow()
    db.flush()
    return before, policy_view(current_policy(db))


def policy_view(policy: SendPolicy) -> dict[str, Any]:
    from engine.durations import format_duration

    return {"cap": {"count": policy.cap.count, "window": format_duration(policy.cap.window)} if policy.cap else None,
            "quiet_hours": {"start": policy.quiet[0], "end": policy.quiet[1]} if policy.quiet else None,
            "saved": policy.saved}


@dataclass(frozen=True)
class Decision:
    outcome: str
    until: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "sent"


# -- pure rules ----------------------------------------------------------------------------------------
def has_consent(consent: dict[str, Any], channel: str) -> bool:
    """Opt-out model: allowed unless this channel or everything was opted out of."""
    if channel == "dry-run":
        return True
    return consent.get(channel) != "opted_out" and consent.get(ALL_CHANNELS) != "opted_out"


def _clock(text: str) -> time:
    hour, minute = (int(p) for p in text.split(":"))
    return time(hour, minute)


def quiet_until(now: datetime, tz: str, start: str, end: str) -> datetime | None:
    """If ``now`` is inside the quiet window [start, end) local time, when it ends (UTC-aware); else None.
    A window may span midnight (21:00–09:00)."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    begin, finish = _clock(start), _clock(end)
    if begin == finish:
        return None
    current = local.time()
    inside = begin <= current < finish if begin < finish else (current >= begin or current < finish)
    if not inside:
        return None
    day = local.date()
    if begin > finish and current >= begin:
        day += timedelta(days=1)
    opens = datetime(day.year, day.month, day.day, finish.hour, finish.minute, tzinfo=zone)
    return opens.astimezone(now.tzinfo)


# -- the gate ------------------------------------------------------------------------------------------
def gate(db: Session, customer_id: str, channel: str, category: str, settings: dict[str, Any], now: datetime,
         cap: FrequencyCap | None) -> Decision:
    """Decide whether a message may go out now. Locks the customer row for the cap check."""
    query = select(models.Customer).where(models.Customer.id == customer_id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    customer = db.scalar(query)
    if customer is None:
        return Decision("skipped: no customer")
    if not has_consent(customer.consent or {}, channel):
        return Decision("skipped: no consent")
    quiet = settings.get("quiet_hours")
    if quiet and category == "promotional":
        tz = zone_or(customer.timezone, settings.get("timezone") or "UTC")
        until = quiet_until(now, tz, quiet["start"], quiet["end"])
        if until is not None:
            return Decision("deferred: quiet hours", until)
    if cap is not None and category == "promotional" and settings.get("frequency_capped", True):
        sent = db.scalar(select(func.count()).select_from(models.Message).where(
            models.Message.customer_id == customer_id, models.Message.category == "promotional",
            models.Message.status.in_(("sent", "sending")), models.Message.created_at > now - cap.window)) or 0
        if sent >= cap.count:
            return Decision("skipped: capped")
    return Decision("sent")


def gate_many(db: Session, customer_ids: list[str], channel: str, category: str, settings: dict[str, Any],
              now: datetime, cap: FrequencyCap | None) -> dict[str, Decision]:
    """:func:`gate` for many customers at once (a broadcast page), with the same rules and outcomes:
    their rows are read — and on PostgreSQL locked, in id order so two pages cannot deadlock — in
    one query per 500, and the cap counts every one's recent promotional messages in one grouped
    query. Call it inside the write transaction that records the messages (on SQLite that
    transaction's ``BEGIN IMMEDIATE`` serialises it with every other writer)."""
    ids = sorted(set(customer_ids))
    postgres = db.get_bind().dialect.name == "postgresql"
    rows: dict[str, tuple[dict[str, Any], str | None]] = {}
    for start in range(0, len(ids), 500):
        query = (select(models.Customer.id, models.Customer.consent, models.Customer.timezone)
                 .where(models.Customer.id.in_(ids[start:start + 500])).order_by(models.Customer.id))
        if postgres:
            query = query.with_for_update()
        for cid, consent, tz in db.execute(query):
            rows[cid] = (consent or {}, tz)
    decisions: dict[str, Decision] = {}
    to_count: list[str] = []
    quiet = settings.get("quiet_hours")
    for cid in ids:
        if cid not in rows:
            decisions[cid] = Decision("skipped: no customer")
            continue
        consent, tz = rows[cid]
        if not has_consent(consent, channel):
            decisions[cid] = Decision("skipped: no consent")
            continue
        if quiet and category == "promotional":
            until = quiet_until(now, zone_or(tz, settings.get("timezone") or "UTC"), quiet["start"], quiet["end"])
            if until is not None:
                decisions[cid] = Decision("deferred: quiet hours", until)
                continue
        to_count.append(cid)
    if cap is not None and category == "promotional" and settings.get("frequency_capped", True):
        counts: dict[str, int] = {}
        for start in range(0, len(to_count), 500):
            for cid, count in db.execute(
                    select(models.Message.customer_id, func.count()).where(
                        models.Message.customer_id.in_(to_count[start:start + 500]),
                        models.Message.category == "promotional", models.Message.status.in_(("sent", "sending")),
                        models.Message.created_at > now - cap.window)
                    .group_by(models.Message.customer_id)):
                counts[cid] = int(count)
        for cid in to_count:
            decisions[cid] = Decision("skipped: capped" if counts.get(cid, 0) >= cap.count else "sent")
    else:
        decisions.update((cid, Decision("sent")) for cid in to_count)
    return decisions


def consent_hook(db: Session, event: models.EventRecord) -> None:
    """Event hook: unsubscribe / subscribe events change consent at once."""
    if event.customer_id is None:
        return
    mapping = UNSUBSCRIBE_EVENTS if event.type in UNSUBSCRIBE_EVENTS else SUBSCRIBE_EVENTS
    if event.type not in mapping:
        return
    channel = mapping[event.type] or str((event.payload or {}).get("channel") or ALL_CHANNELS)
    customer = db.get(models.Customer, event.customer_id)
    if customer is None:
        return
    status = "opted_out" if mapping is UNSUBSCRIBE_EVENTS else "opted_in"
    consent = dict(customer.consent or {})
    if status == "opted_in" and channel == ALL_CHANNELS:
        consent = {}
    else:
        consent[channel] = status
    customer.consent = consent
