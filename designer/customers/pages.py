"""The customer pages: the customer list (search by name, id, phone or email) and one customer's profile
with masked identities, tags, attributes, consent, journeys and the messages they got.

Thin routes over the database and :mod:`engine.customers` (identity rules, masking); drawn with the page
kit (:mod:`designer.pages`), text in :mod:`designer.customers.text`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.loyalty import ledger
from designer import reading
from designer.display import identity_label
from designer.i18n import _
from designer.journeys.pages import message_row
from designer.loyalty import labels as _loyalty_labels  # noqa: F401  (the points section's labels)
from designer.pages import DbUrl, PageProblem, Pager, PageRoute, clip, page_number, page_user, render, see_other
from designer.permissions import CUSTOMER_READERS, FLOW_READERS, LOYALTY_REDEEMERS
from engine import auth
from engine.customers import canonical, mask_identity, matching
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.pii import mask_values

router = APIRouter(route_class=PageRoute, include_in_schema=False)
CustomerReader = Annotated[User, Depends(page_user(*CUSTOMER_READERS))]


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, user: CustomerReader, db_url: DbUrl, q: str = "",
                   page: str = "") -> HTMLResponse:
    """Customers, newest first; search by name, id, phone or email."""
    q = clip(q)
    with session_factory(db_url)() as db:
        query = select(models.Customer).where(models.Customer.merged_into.is_(None))
        if q:
            query = query.where(matching(q))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        customers = list(db.scalars(query.order_by(models.Customer.created_at.desc(), models.Customer.id)
                                    .offset(pager.offset).limit(pager.per)))
        ids = [c.id for c in customers]
        identities: dict[str, list[tuple[str, str]]] = {}
        tags: dict[str, list[str]] = {}
        if ids:
            for row in db.scalars(select(models.Identity).where(models.Identity.customer_id.in_(ids))
                                  .order_by(models.Identity.kind)):
                identities.setdefault(row.customer_id, []).append(
                    (identity_label(row.kind), mask_identity(row.kind, row.value)))
            for cid, tag in db.execute(select(models.CustomerTag.customer_id, models.CustomerTag.tag)
                                       .where(models.CustomerTag.customer_id.in_(ids))
                                       .order_by(models.CustomerTag.tag)).all():
                tags.setdefault(str(cid), []).append(str(tag))
        reader = reading.reader_of(db, user)
        shown = {c.id: reading.customer_for(db, reader, c.id, {"id": c.id, "name": c.name,
                                                               "created_at": c.created_at}) for c in customers}
    rows = [{"customer": shown[c.id], "identities": identities.get(c.id, []), "tags": tags.get(c.id, [])}
            for c in customers]
    return render(request, user, "customers/customers.html", rows=rows, pager=pager, q=q)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(request: Request, customer_id: str, user: CustomerReader, db_url: DbUrl) -> Response:
    """One customer: profile, masked identities, tags, journeys and the messages they got."""
    with session_factory(db_url)() as db:
        found = db.get(models.Customer, customer_id)
        if found is None:
            raise PageProblem(404, user, _("Not found"), _("There is no customer “%(id)s”.") % {"id": customer_id},
                              back="/customers")
        cid = canonical(db, customer_id)
        if cid != customer_id:
            return see_other(f"/customers/{cid}")
        identities = [{"kind": identity_label(i.kind), "value": mask_identity(i.kind, i.value)}
                      for i in db.scalars(select(models.Identity).where(models.Identity.customer_id == cid)
                                          .order_by(models.Identity.kind))]
        tags = list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == cid)
                               .order_by(models.CustomerTag.tag)))
        journeys = list(db.scalars(select(models.Journey).where(models.Journey.customer_id == cid)
                                   .order_by(models.Journey.started_at.desc()).limit(100)))
        rows = list(db.scalars(select(models.Message).where(models.Message.customer_id == cid)
                               .order_by(models.Message.created_at.desc(), models.Message.id.desc()).limit(100)))
        merged = list(db.scalars(select(models.Customer.id).where(models.Customer.merged_into == cid)))
        names = flow_names(db, {j.flow_id for j in journeys} | {m.flow_id for m in rows if m.flow_id})
        loyalty = _points_view(ledger.summary(db, cid, datetime.now(UTC)))
        reader = reading.reader_of(db, user)
        messages = reading.messages_for(db, reader, rows, message_row)
        # identities are shown masked to everyone already; name and attributes follow the read policy
        shown = reading.customer_for(db, reader, cid, {
            "id": found.id, "name": found.name, "timezone": found.timezone, "created_at": found.created_at,
            "attributes": mask_values(dict(found.attributes or {}))})
    return render(request, user, "customers/customer.html", customer=shown, identities=identities,
                   tags=tags, attributes=shown["attributes"], consent=dict(found.consent or {}),
                   pii_masked=bool(shown.get("pii_masked")), journeys=journeys, messages=messages, merged=merged,
                   flow_names=names, may_see_journeys=auth.has_role(user, *FLOW_READERS), loyalty=loyalty,
                   may_redeem=auth.has_role(user, *LOYALTY_REDEEMERS), redeem_request=uuid.uuid4().hex,
                   redeemed=clip(request.query_params.get("redeemed", ""), 12),
                   loyalty_short=clip(request.query_params.get("loyalty_short", ""), 12),
                   loyalty_error=clip(request.query_params.get("loyalty_error", ""), 200),
                   cancelled=_count(request.query_params.get("cancelled")),
                   cancel_lapsed=_count(request.query_params.get("cancel_lapsed")),
                   cancel_repeated=request.query_params.get("cancel_repeated") == "1",
                   cancel_missing=_count(request.query_params.get("cancel_missing")))


def _count(value: str | None) -> int | None:
    """A whole number from the query (what a redirect after a points change says), None otherwise."""
    return int(value) if value and value.isdigit() and len(value) <= 19 else None


def flow_names(db: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return {str(i): str(n) for i, n in db.execute(select(models.FlowRecord.id, models.FlowRecord.name)
                                                  .where(models.FlowRecord.id.in_(ids))).all()}


def _points_view(summary: dict[str, object]) -> dict[str, object]:
    """The loyalty summary with its ISO times as datetimes, so the page shows them in its display timezone."""
    def at(value: object) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    lots = [{**lot, "earned_at": at(lot["earned_at"]), "expires_at": at(lot["expires_at"])}
            for lot in summary["lots"]]  # type: ignore[attr-defined]
    lines = [{**line, "at": at(line["at"])} for line in summary["ledger"]]  # type: ignore[attr-defined]
    return {**summary, "lots": lots, "ledger": lines}
