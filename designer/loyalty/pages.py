"""Loyalty on the customer page: redeeming points for a member (积分兑换) by staff, and cancelling a
redemption (积分退回) from its ledger line. The balance, lots and ledger themselves are drawn by the customer
page (designer/customers/pages.py) from :func:`activities.loyalty.ledger.summary`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import RedirectResponse

from activities.loyalty import ledger
from designer.growth import labels as _labels  # noqa: F401  (the loyalty labels live with growth's)
from designer.i18n import _
from designer.pages import DbUrl, PageRoute, page_user, see_other
from designer.permissions import LOYALTY_REDEEMERS
from engine.db.models import User
from engine.db.session import transaction

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RedeemerPage = Annotated[User, Depends(page_user(*LOYALTY_REDEEMERS))]


@router.post("/customers/{customer_id}/loyalty/redeem")
def redeem_page(customer_id: str, user: RedeemerPage, db_url: DbUrl,
                points: Annotated[str, Form(max_length=12)],
                request_id: Annotated[str, Form(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9]+$")],
                reason: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    """Redeem once per form (the form carries its own request id, so a double submit redeems once)."""
    back = f"/customers/{quote(customer_id)}"
    if not points.strip().isdigit() or int(points) < 1:
        why = _("the points to redeem are a whole number of at least 1")
        return see_other(f"{back}?loyalty_error={quote(why)}#loyalty")
    try:
        with transaction(db_url) as db:
            member = ledger.find_member(db, {"customer_id": customer_id})
            if member is None:
                why = _("there is no such customer")
                return see_other(f"{back}?loyalty_error={quote(why)}#loyalty")
            ledger.burn(db, member, int(points), f"redeem:{user.username}:{request_id}", datetime.now(UTC),
                        reason=reason.strip() or "redeem", detail={"by": user.username, "request_id": request_id})
    except ledger.InsufficientPoints as exc:
        return see_other(f"{back}?loyalty_short={exc.available}#loyalty")
    return see_other(f"{back}?redeemed={int(points)}#loyalty")


@router.post("/customers/{customer_id}/loyalty/redemptions/{entry_id}/cancel")
def cancel_page(customer_id: str, entry_id: Annotated[int, Path(ge=1, le=2**62)], user: RedeemerPage,
                db_url: DbUrl, reason: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    """Give a redemption's points back (the ledger line's cancel button; htmx swaps the points section with
    the page this redirects to, which says what was given back or why not). Staff who may redeem may cancel
    any redemption of the member — a shop's too — once: a second click answers with the first booking."""
    back = f"/customers/{quote(customer_id)}"
    try:
        with transaction(db_url) as db:
            member = ledger.find_member(db, {"customer_id": customer_id})
            key = ledger.redemption_key(db, member, entry_id) if member else None
            if member is None or key is None:
                raise ledger.RedemptionNotFound(str(entry_id))
            booked = ledger.cancel_redemption(db, member, key, datetime.now(UTC),
                                              reason=reason.strip() or "cancelled", by=user.username)
            lapsed = booked.lapsed
    except ledger.RedemptionNotFound:
        return see_other(f"{back}?cancel_missing={entry_id}#loyalty")
    again = "&cancel_repeated=1" if booked.repeated else ""
    return see_other(f"{back}?cancelled={booked.entry.points}&cancel_lapsed={lapsed}{again}#loyalty")
