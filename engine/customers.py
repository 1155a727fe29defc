"""Customers and identity resolution.

Every channel knows a customer by its own id: WeCom's external_userid, WeChat's
openid/unionid, a phone number, an email, a shop's buyer id. They all map to one
customer. When an event links two identities that belonged to different
customers, those customers are merged into the older one (its id survives; the
other keeps a ``merged_into`` pointer so old references still resolve).

What moves with a merge (see docs/profiles.md › Merging): identities, tags, events, messages, orders,
refunds, coupons, tickets and **journeys** — the journey rows are the enrolment and re-entry bookkeeping
and the list the router signals, so the merged customer's journeys (those still waiting too) receive the
survivor's events, a ``reentry: never`` flow is not entered again by the merged customer, and the
customer page shows them. The workflows themselves keep their ids; their customer views follow the
merge pointer (:func:`canonical`).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, literal_column, or_, select, update
from sqlalchemy.orm import Session

from engine.db import models
from engine.db.models import utcnow
from engine.text import Msg, MsgError

#: identity kinds with their meaning; shop buyer ids use ``<shop>_buyer`` (e.g. ``youzan_buyer``)
KNOWN_KINDS = {
    "customer_id": "Tideflow customer id",
    "wecom_external_userid": "WeCom external contact (external_userid)",
    "wechat_openid": "WeChat Official Account openid",
    "wechat_unionid": "WeChat unionid",
    "phone": "mobile phone number",
    "email": "email address",
    "external_id": "your own system's customer id",
}
#: counters that add up when two customers turn out to be one
ADDITIVE = ("orders_count", "total_spent_fen", "refunds_count")
SHOP_BUYER = re.compile(r"^(youzan|taobao|tmall|jd|douyin|shopify|shop)_buyer$")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class IdentityError(MsgError):
    """An identity that cannot be used: unknown kind or malformed value."""


def normalise(kind: str, value: Any) -> str:
    """The canonical form of an identity value (phones in E.164, emails lower-case)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise IdentityError(Msg("identity '%(kind)s' must be a string", kind=kind))
    text = str(value).strip()
    if not text or len(text) > 200:
        raise IdentityError(Msg("identity '%(kind)s' must be 1–200 characters", kind=kind))
    if kind == "phone":
        digits = re.sub(r"[\s\-()]", "", text)
        if re.fullmatch(r"1\d{10}", digits):
            digits = "+86" + digits
        elif re.fullmatch(r"86\d{11}", digits):
            digits = "+" + digits
        if not re.fullmatch(r"\+\d{6,15}", digits):
            raise IdentityError(Msg("phone '%(phone)s' is not a phone number; use e.g. +8613800138000",
                                    phone=mask_phone(text)))
        return digits
    if kind == "email":
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            raise IdentityError(Msg("email is not an email address"))
        return text.lower()
    return text


def check_kind(kind: str) -> None:
    if kind in KNOWN_KINDS or SHOP_BUYER.match(kind):
        return
    raise IdentityError(
        Msg("unknown identity kind '%(kind)s'; use one of %(kinds)s or "
            "'<shop>_buyer'",
            kind=kind, kinds=', '.join(sorted(KNOWN_KINDS)))
    )


def mask_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def mask_identity(kind: str, value: str, platform_ids: bool = True) -> str:
    """How an identity is shown: phones ``139****0001``, emails ``a***@domain``; long platform ids keep
    their first and last four characters. ``platform_ids=False`` leaves platform ids in clear (the JSON API
    gives them to the integrations that send messages by them); phones and emails are masked always."""
    if kind == "phone":
        return mask_phone(value)
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        return local[:1] + "***@" + domain
    if kind == "customer_id" or not platform_ids:
        return value
    if len(value) > 10:
        return value[:4] + "****" + value[-4:]
    return value[:2] + "****" + value[-2:] if len(value) > 6 else "****"


def matching(q: str) -> ColumnElement[bool]:
    """A WHERE clause for a customer search: the name contains ``q``, or the id is ``q``, or an identity's
    value is ``q`` (as typed, or normalised as a phone or email)."""
    values = {q}
    for kind in ("phone", "email"):
        with contextlib.suppress(IdentityError):
            values.add(normalise(kind, q))
    by_identity = select(models.Identity.customer_id).where(models.Identity.value.in_(values))
    return or_(models.Customer.name.ilike(f"%{q}%"), models.Customer.id == q, models.Customer.id.in_(by_identity))


def new_customer_id() -> str:
    return "c_" + uuid.uuid4().hex[:20]


def canonical(db: Session, customer_id: str) -> str:
    """Follow merge pointers to the surviving customer."""
    seen = set()
    current = customer_id
    while current not in seen:
        seen.add(current)
        target = db.scalar(select(models.Customer.merged_into).where(models.Customer.id == current))
        if not target:
            return current
        current = target
    return current


def aliases(db: Session, customer_id: str) -> list[str]:
    """The surviving customer and every customer merged into it (the survivor first): the ids under which one
    person's history (referrals, points, orders) may be stored."""
    survivor = canonical(db, customer_id)
    found, frontier = [survivor], [survivor]
    while frontier:
        merged = [c for c in db.scalars(select(models.Customer.id).where(models.Customer.merged_into.in_(frontier)))
                  if c not in found]
        found += merged
        frontier = merged
    return found


def resolve(db: Session, identities: Mapping[str, Any], name: str | None = None,
            attributes: Mapping[str, Any] | None = None, flush: bool = True) -> str:
    """The customer these identities belong to, creating or merging customers as needed.

    Runs inside the caller's transaction. A concurrent insert of the same new identity
    raises IntegrityError on flush or commit; the caller retries and then finds it. With ``flush=False`` a new
    customer and new identities are left pending, written by the caller's next flush (or the session's
    autoflush before its next query): an event's store writes them with the event row in one flush.
    """
    pairs: dict[str, str] = {}
    direct: str | None = None
    for kind, value in identities.items():
        check_kind(kind)
        if kind == "customer_id":
            direct = str(value)
            continue
        pairs[kind] = normalise(kind, value)
    owners: list[str] = []
    if direct:
        if db.get(models.Customer, direct) is None:
            raise IdentityError(Msg("customer '%(direct)s' does not exist", direct=direct))
        owners.append(canonical(db, direct))
    existing: dict[tuple[str, str], str] = {}
    for kind, value in pairs.items():
        row = db.get(models.Identity, (kind, value))
        if row is not None:
            owner = canonical(db, row.customer_id)
            existing[(kind, value)] = owner
            if owner not in owners:
                owners.append(owner)
    if not owners:
        customer = models.Customer(id=new_customer_id(), name=name, attributes=dict(attributes or {}), consent={})
        db.add(customer)  # its id is ours: no flush needed to know it
        survivor = customer.id
    else:
        survivor = _merge(db, owners)
        if name or attributes:
            found = db.get(models.Customer, survivor)
            assert found is not None
            if name and not found.name:
                found.name = name
            if attributes:
                found.attributes = {**found.attributes, **attributes}
    for (kind, value) in pairs.items():
        if (kind, value) not in existing:
            db.add(models.Identity(kind=kind, value=value, customer_id=survivor))
    if flush:
        db.flush()
    return survivor


#: rows that belong to the surviving customer after a merge (all keyed by ``customer_id``)
MOVES_WITH_MERGE: tuple[Any, ...] = (models.EventRecord, models.Message, models.Journey, models.Order, models.Refund,
                                     models.Coupon, models.Ticket)


def _merged_ids_query() -> Select[tuple[str]]:
    """Up the merge pointers from ``:customer_id`` to its survivor, then down through every customer merged into
    it (directly or through others): the survivor first. One statement, built once (building it per call costs
    more than running it)."""
    c = models.Customer.__table__
    up = select(c.c.id, c.c.merged_into).where(c.c.id == bindparam("customer_id")).cte("up", recursive=True)
    up = up.union(select(c.c.id, c.c.merged_into).join(up, c.c.id == up.c.merged_into))
    survivor = select(up.c.id, literal_column("0").label("depth")).where(up.c.merged_into.is_(None))
    down = survivor.cte("down", recursive=True)
    down = down.union_all(select(c.c.id, down.c.depth + literal_column("1"))
                          .join(down, c.c.merged_into == down.c.id))
    return select(down.c.id).order_by(down.c.depth).limit(1000)


_MERGED_IDS = _merged_ids_query()


def merged_ids(db: Session, customer_id: str) -> list[str]:
    """The surviving customer's id and the ids of every customer merged into it (directly or through
    others): rows written under an old id after the merge (a race with a journey's first checkpoint)
    still count as the survivor's. The survivor comes first; an unknown id (or a merge pointer cycle, which
    has no survivor) is answered as itself. One query: a router reads this per event."""
    return list(db.scalars(_MERGED_IDS, {"customer_id": customer_id})) or [customer_id]


def _merge(db: Session, owners: list[str]) -> str:
    if len(owners) == 1:
        return owners[0]
    rows = db.scalars(select(models.Customer).where(models.Customer.id.in_(owners))).all()
    rows = sorted(rows, key=lambda c: (c.created_at, c.id))
    survivor, losers = rows[0], rows[1:]
    for loser in losers:
        summed = {k: loser.attributes[k] + survivor.attributes.get(k, 0) for k in ADDITIVE
                  if isinstance(loser.attributes.get(k), int) and isinstance(survivor.attributes.get(k, 0), int)}
        survivor.attributes = {**loser.attributes, **survivor.attributes, **summed}
        survivor.consent = {**loser.consent, **survivor.consent}
        survivor.name = survivor.name or loser.name
        survivor.timezone = survivor.timezone or loser.timezone
        db.execute(update(models.Identity).where(models.Identity.customer_id == loser.id)
                   .values(customer_id=survivor.id))
        have = set(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == survivor.id)))
        for tag in db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == loser.id)):
            if tag not in have:
                db.add(models.CustomerTag(customer_id=survivor.id, tag=tag))
        db.execute(delete(models.CustomerTag).where(models.CustomerTag.customer_id == loser.id))
        for table in MOVES_WITH_MERGE:
            db.execute(update(table).where(table.customer_id == loser.id).values(customer_id=survivor.id))
        loser.merged_into = survivor.id
        db.add(models.AuditEntry(actor="system", action="customer.merged", target=survivor.id,
                                 detail={"merged": loser.id}))
    db.flush()
    return survivor.id


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time stored in an attribute (naive means UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def days_since(value: Any, now: datetime) -> int | None:
    """Whole days (24 h periods) from an ISO 8601 time to ``now``; None when it is not a time."""
    moment = parse_time(value)
    if moment is None:
        return None
    return max(0, (now - moment).days)


def derived_attributes(attributes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Attributes computed when a customer is read: ``days_since_interaction`` from
    ``last_interaction_at``. Nothing when that is absent, so a stored value (demo data) stays."""
    days = days_since(attributes.get("last_interaction_at"), now)
    return {} if days is None else {"days_since_interaction": days}


def tags_of(db: Session, customer_id: str) -> list[str]:
    return sorted(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == customer_id)))


def customer_view(db: Session, customer_id: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The customer as expressions and templates see it: attributes (and derived ones such as
    ``days_since_interaction``), then the fixed fields."""
    if not customer_id:
        return {}
    customer = db.get(models.Customer, customer_id)  # a survivor almost always: its row is the one
    if customer is not None and customer.merged_into:
        customer = db.get(models.Customer, canonical(db, customer_id))
    if customer is None:
        return {}
    attributes = {**customer.attributes, **derived_attributes(customer.attributes, now or utcnow())}
    return {**attributes, "id": customer.id, "name": customer.name or "",
            "timezone": customer.timezone, "tags": tags_of(db, customer.id)}


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def customer_views(db: Session, customer_ids: list[str], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """:func:`customer_view` for many customers in two queries (customers, tags) per
    500; a merged customer (rare) is read the one-by-one way, following its merge pointers."""
    moment = now or utcnow()
    views: dict[str, dict[str, Any]] = {}
    c = models.Customer
    for chunk in _chunks(sorted(set(customer_ids))):
        rows = {row.id: row for row in db.execute(
            select(c.id, c.name, c.timezone, c.attributes, c.merged_into).where(c.id.in_(chunk)))}
        tags: dict[str, list[str]] = {cid: [] for cid in chunk}
        for cid, tag in db.execute(select(models.CustomerTag.customer_id, models.CustomerTag.tag)
                                   .where(models.CustomerTag.customer_id.in_(chunk))):
            tags[cid].append(tag)
        for cid in chunk:
            row = rows.get(cid)
            if row is None or row.merged_into:
                views[cid] = customer_view(db, cid, moment)
                continue
            stored = row.attributes or {}
            views[cid] = {**stored, **derived_attributes(stored, moment), "id": row.id, "name": row.name or "",
                          "timezone": row.timezone, "tags": sorted(tags[cid])}
    return views
