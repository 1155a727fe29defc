"""The customer as the sidebar shows them: who (identities masked), tags, attributes, where they came from,
orders across shops, coupons held, journeys, open tickets, the last messages — and what is true of them
now (:class:`~activities.sidebar.suggestions.Situation`) for suggestions.

Read policy: the web app's one policy (engine/read_policy.py, facts from :mod:`activities.reading`), by the
viewer's role and ticket groups — the customer's name, identities and attributes clear or masked
(:func:`engine.read_policy.customer_view`), each message listed, shown as metadata only or left out
(:func:`engine.read_policy.message_view`), phones and cards inside message text masked for everyone as on
the customer pages; tickets are those :func:`activities.tickets.service.may_see` lets the user see. The
situation suggestions are computed from is built from the same view (a rule cannot test what the viewer may
not read), and the latest message counts only when the viewer may read it.

Extension point — panels: a package adds a section (loyalty tier and points, the WeCom conversation
archive …) by registering a provider in the entry point group ``tideflow.sidebar_panels`` (or with
:func:`register_panel`). A provider is ``(db, customer_id, now) -> Panel | None``; its ``facts`` reach
suggestion rules (``tier`` feeds the ``tier`` situation, ``latest_message`` a newer last message).
A provider that fails is shown as unavailable, never breaks the sidebar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from activities import reading
from activities.coupons.issuance import customer_ids
from activities.sidebar.suggestions import Situation
from activities.tickets import service as tickets
from activities.workforce import chat_archive
from engine import customers
from engine import read_policy as policy
from engine.auth import audit
from engine.customers import canonical, customer_view
from engine.db import models
from engine.db import workforce_models as wf
from engine.pii import mask_text, mask_values
from engine.read_policy import Reader

log = logging.getLogger(__name__)
PANEL_GROUP = "tideflow.sidebar_panels"
#: attributes that say where the customer came from, in the order they are shown
SOURCE_ATTRIBUTES = ("first_touch", "last_touch", "source", "channel")


@dataclass(frozen=True)
class ArchiveAccess:
    """The WeCom conversation archive (会话内容存档, workforce) as this viewer may use it: the web app lets only
    compliance officers read it (``read_all``: the customer's archived conversation is shown, and the view is
    audited like the archive viewer's); anyone else gets only the latest message the customer wrote to them
    (``member``, their own WeCom UserID) — what they see in their own chat — for the page and suggestions."""

    connector_id: str
    member: str | None = None
    read_all: bool = False


@dataclass
class Panel:
    """A section of the sidebar added by another package."""

    key: str
    title: dict[str, str]
    #: [{"label": {"zh-CN": ..., "en": ...}, "value": str}]
    items: list[dict[str, Any]] = field(default_factory=list)
    #: what suggestion rules may use: "tier", "latest_message" {"text", "at"}, anything else under facts.<key>
    facts: dict[str, Any] = field(default_factory=dict)


PanelProvider = Callable[[Session, str, datetime], "Panel | None"]
_registered: dict[str, PanelProvider] = {}


def register_panel(name: str, provider: PanelProvider | None) -> None:
    """Add (or with None remove) a panel provider in this process — plugins use the entry point group."""
    if provider is None:
        _registered.pop(name, None)
    else:
        _registered[name] = provider


@cache
def _entry_point_panels() -> dict[str, PanelProvider]:
    found: dict[str, PanelProvider] = {}
    for ep in sorted(entry_points(group=PANEL_GROUP), key=lambda e: e.name):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not take the sidebar down
            log.warning("sidebar panel %s cannot be loaded: %s", ep.name, type(exc).__name__)
    return found


def panel_providers() -> dict[str, PanelProvider]:
    return {**_entry_point_panels(), **_registered}


# -- the read policy ------------------------------------------------------------------------------------------


def viewer(db: Session, user: models.User, aliases: list[str]) -> tuple[Reader, frozenset[str]]:
    """The policy's reader for ``user``, and the ticket groups of the customer (its merged ids together)."""
    reader = reading.reader_of(db, user)
    return reader, reading.groups_of_customer(db, reader, aliases)


def _may_read(db: Session, reader: Reader, message: models.Message) -> bool:
    seen = reading.messages_for(db, reader, [message], lambda m: {"content": m.content})
    return bool(seen) and seen[0]["content"] is not None


def _identity(kind: str, value: str) -> str:
    """An identity as the sidebar lists it: phones, e-mails and platform ids masked for everyone, as on the
    customer pages (:func:`engine.customers.mask_identity`)."""
    return customers.mask_identity(kind, value)


# -- the picture --------------------------------------------------------------------------------------------


def _panels(db: Session, customer_id: str, now: datetime) -> list[Panel | dict[str, Any]]:
    out: list[Panel | dict[str, Any]] = []
    for name, provider in panel_providers().items():
        try:
            with db.begin_nested():
                panel = provider(db, customer_id, now)
        except Exception as exc:
            log.warning("sidebar panel %s failed for a customer: %s", name, type(exc).__name__)
            out.append({"key": name, "error": f"{name} is unavailable right now ({type(exc).__name__})"})
            continue
        if panel is not None:
            out.append(panel)
    return out


def _coupon_code(code: str) -> str:
    return code if len(code) <= 4 else "****" + code[-4:]


def situation_of(db: Session, customer_id: str, view: dict[str, Any], open_types: set[str],
                 latest: tuple[str, datetime | None], panels: list[Panel | dict[str, Any]], now: datetime
                 ) -> Situation:
    text, at = latest
    tier: str | None = None
    facts: dict[str, Any] = {}
    for panel in panels:
        if not isinstance(panel, Panel):
            continue
        facts[panel.key] = dict(panel.facts)
        if panel.facts.get("tier") is not None and tier is None:
            tier = str(panel.facts["tier"])
        said = panel.facts.get("latest_message")
        if isinstance(said, dict) and said.get("text"):
            said_at = said.get("at")
            when = datetime.fromisoformat(said_at) if isinstance(said_at, str) else said_at
            if at is None or (isinstance(when, datetime) and when > at):
                text, at = str(said["text"]), when if isinstance(when, datetime) else at
    running = {c for c in db.scalars(select(models.CouponCampaign.id).where(
        models.CouponCampaign.status == "active",
        or_(models.CouponCampaign.valid_from.is_(None), models.CouponCampaign.valid_from <= now),
        or_(models.CouponCampaign.valid_until.is_(None), models.CouponCampaign.valid_until > now)))}
    running |= set(db.scalars(select(models.FlowRecord.id).where(models.FlowRecord.status == "active")))
    journeys = set(db.scalars(select(models.Journey.flow_id).where(
        models.Journey.customer_id.in_(customer_ids(db, customer_id)[1]),
        models.Journey.status.in_(("running", "waiting")))))
    return Situation(customer=view, latest_message=text, open_ticket_types=frozenset(open_types),
                     tags=frozenset(view.get("tags") or ()), tier=tier, running_campaigns=frozenset(running),
                     journeys=frozenset(journeys), facts=facts)


def _archived_latest(db: Session, archive: ArchiveAccess, aliases: list[str]) -> tuple[str, datetime] | None:
    query = select(wf.ArchivedMessage).where(
        wf.ArchivedMessage.connector_id == archive.connector_id, wf.ArchivedMessage.customer_id.in_(aliases),
        wf.ArchivedMessage.direction == "customer", wf.ArchivedMessage.status == "stored",
        wf.ArchivedMessage.roomid == "", wf.ArchivedMessage.text != "")
    if not archive.read_all:
        if not archive.member:
            return None
        query = query.where(wf.ArchivedMessage.staff_userid == archive.member)
    row = db.scalar(query.order_by(wf.ArchivedMessage.msgtime.desc()).limit(1))
    return (row.text, row.msgtime) if row is not None else None


def picture(db: Session, user: models.User, customer_id: str, now: datetime, messages: int = 10,
            archive: ArchiveAccess | None = None) -> tuple[dict[str, Any], Situation]:
    """The sidebar's view of one customer for ``user``, and the customer's situation for suggestions."""
    cid = canonical(db, customer_id)
    customer = db.get(models.Customer, cid)
    if customer is None:
        raise LookupError(f"customer '{customer_id}' does not exist")
    _, aliases = customer_ids(db, cid)
    reader, groups = viewer(db, user, aliases)
    view = policy.customer_view(reader, customer_view(db, cid, now), groups)
    identities = db.scalars(select(models.Identity).where(models.Identity.customer_id.in_(aliases))
                            .order_by(models.Identity.kind, models.Identity.created_at))
    orders = db.scalars(select(models.Order).where(models.Order.customer_id.in_(aliases))
                        .order_by(models.Order.paid_at.desc().nulls_last(), models.Order.id.desc()).limit(20))
    coupons = db.scalars(select(models.Coupon).where(
        models.Coupon.customer_id.in_(aliases), models.Coupon.status == "issued",
        or_(models.Coupon.expires_at.is_(None), models.Coupon.expires_at > now)).order_by(models.Coupon.issued_at))
    campaign_names = {r[0]: r[1] for r in db.execute(select(models.CouponCampaign.id, models.CouponCampaign.name))}
    journeys = db.scalars(select(models.Journey).where(models.Journey.customer_id.in_(aliases),
                                                       models.Journey.status.in_(("running", "waiting")))
                          .order_by(models.Journey.started_at.desc()).limit(20))
    flow_names = {r[0]: r[1] for r in db.execute(select(models.FlowRecord.id, models.FlowRecord.name))}
    open_tickets = list(db.scalars(select(models.Ticket).where(models.Ticket.customer_id.in_(aliases),
                                                               models.Ticket.status.in_(tickets.OPEN_STATUSES))
                                   .order_by(models.Ticket.id.desc()).limit(50)))
    visible = [t for t in open_tickets if tickets.may_see(db, user, t)]
    recent = list(db.scalars(select(models.Message).where(models.Message.customer_id.in_(aliases))
                             .order_by(models.Message.id.desc()).limit(messages)))
    last_in = db.scalar(select(models.Message).where(models.Message.customer_id.in_(aliases),
                                                     models.Message.direction == "in")
                        .order_by(models.Message.id.desc()).limit(1))
    panels = _panels(db, cid, now)
    person = policy.customer_view(reader, {
        "name": customer.name or "", "identities": [{"kind": i.kind, "value": i.value} for i in identities],
        "attributes": dict(sorted(customer.attributes.items()))}, groups)
    masked = bool(person.get("pii_masked"))
    # and, for every viewer, as on the customer pages: identities masked, phones and cards inside text masked
    attributes = {k: mask_values(v) for k, v in person["attributes"].items()}
    shown: dict[str, Any] = {
        "id": cid, "name": person["name"], "tags": view.get("tags") or [], "pii_masked": masked,
        "identities": person["identities"] if masked else [
            {"kind": i["kind"], "value": _identity(i["kind"], i["value"])} for i in person["identities"]],
        "attributes": attributes,
        "source": {k: attributes[k] for k in SOURCE_ATTRIBUTES if k in attributes},
        "orders": [{"channel": o.channel, "shop": o.shop, "order_id": o.order_id, "status": o.status,
                    "amount_fen": o.amount_fen, "refunded_fen": o.refunded_fen, "currency": o.currency,
                    "paid_at": o.paid_at.isoformat() if o.paid_at else None} for o in orders],
        "coupons": [{"campaign": c.campaign_id, "campaign_name": campaign_names.get(c.campaign_id, c.campaign_id),
                     "code": _coupon_code(c.code), "expires_at": c.expires_at.isoformat() if c.expires_at else None}
                    for c in coupons],
        "journeys": [{"flow": j.flow_id, "flow_name": flow_names.get(j.flow_id, j.flow_id), "status": j.status,
                      "node": j.current_node, "started_at": j.started_at.isoformat()} for j in journeys],
        "tickets": [{"id": t.id, "type": t.type_key, "subject": t.subject, "status": t.status,
                     "priority": t.priority, "group": t.group_key, "created_at": t.created_at.isoformat()}
                    for t in visible],
        "messages": reading.messages_for(db, reader, recent, lambda m: {
            "direction": m.direction, "channel": m.channel, "content": mask_text(m.content),
            "at": m.created_at.isoformat()}),
        "panels": [p if isinstance(p, dict) else {"key": p.key, "title": p.title, "items": p.items}
                   for p in panels],
    }
    open_types = {t.type_key for t in visible}  # a ticket the user may not see does not show through suggestions
    latest: tuple[str, datetime | None] = ("", None)
    if last_in is not None and _may_read(db, reader, last_in):  # it counts only when the viewer may read it
        latest = (last_in.content, last_in.created_at)
    if archive is not None:
        archived = _archived_latest(db, archive, aliases)
        if archived is not None and (latest[1] is None or archived[1] > latest[1]):
            latest = archived
        if archive.read_all:
            shown["archive"] = chat_archive.conversation(db, archive.connector_id, customer_id=cid, limit=messages)
            audit(db, user, "workforce.archive_viewed", f"customer:{cid}|staff:|room:",
                  {"via": "sidebar", "messages": len(shown["archive"])}, at=now)
    return shown, situation_of(db, cid, view, open_types, latest, panels, now)
