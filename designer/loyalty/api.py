"""Loyalty in the JSON API (docs/growth.md): the program's rules, a member's balance, lots and ledger,
and redemption — for the designer and for shops and mini-programs (API tokens of a developer or marketer).

``GET /api/loyalty/balance?phone=…`` (any identity kind) finds the member without creating one;
``POST /api/loyalty/members/{id}/redeem`` burns points once per ``request_id`` (a retried request gets
the first answer back; two different requests never overdraw: 409 with what is available);
``POST /api/loyalty/members/{id}/redemptions/{request_id}/cancel`` gives a redemption's points back once
(a retry answers 200 with the same booking, ``repeated: true``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from activities.loyalty import ledger
from activities.loyalty.program import ProgramConfig, load, save
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import LOYALTY_READERS, LOYALTY_REDEEMERS
from engine.customers import IdentityError, check_kind
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

router = APIRouter(prefix="/api/loyalty", tags=["loyalty"])
Reader = Annotated[User, Depends(require(*LOYALTY_READERS))]
Redeemer = Annotated[User, Depends(require(*LOYALTY_REDEEMERS))]
Marketer = Annotated[User, Depends(require("marketer"))]
DbUrl = Annotated[str, Depends(get_db_url)]


@router.get("/program")
def get_program(user: Reader, db_url: DbUrl) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        return load(db).model_dump(mode="json")


@router.put("/program")
def put_program(body: ProgramConfig, user: Marketer, db_url: DbUrl) -> dict[str, Any]:
    """Replace the program's rules (audited with before and after). ``enabled`` starts earning on orders."""
    with transaction(db_url) as db:
        save(db, body, user.username)
    return body.model_dump(mode="json")


def _member(db: Any, customer_id: str) -> str:
    found = ledger.find_member(db, {"customer_id": customer_id})
    if found is None:
        raise ApiError(404, Msg("customer '%(customer_id)s' does not exist", customer_id=customer_id),
                       Msg("look the member up by an identity: GET /api/loyalty/balance?phone=…"), "customer_id")
    return found


@router.get("/members/{customer_id}")
def member(customer_id: str, user: Reader, db_url: DbUrl) -> dict[str, Any]:
    """Balance (spendable), tier, lots with their expiry, the latest ledger lines."""
    with session_factory(db_url)() as db:
        return ledger.summary(db, _member(db, customer_id), datetime.now(UTC))


@router.get("/balance")
def balance(request: Request, user: Reader, db_url: DbUrl) -> dict[str, Any]:
    """A member found by one identity in the query: ``?phone=13800138000``, ``?wechat_openid=…``,
    ``?youzan_buyer=…``, ``?customer_id=…``."""
    identities = {k: v for k, v in request.query_params.items() if k != "lang"}
    if len(identities) != 1:
        raise ApiError(422, Msg("give exactly one identity, e.g. ?phone=13800138000"), Msg("one query parameter"),
                       "query")
    kind, value = next(iter(identities.items()))
    try:
        check_kind(kind)
        with session_factory(db_url)() as db:
            found = ledger.find_member(db, {kind: value[:200]})
            if found is None:
                raise ApiError(404, Msg("no member with this %(kind)s", kind=kind),
                               Msg("check the identity, or enrol the customer first"),
                               kind)
            return ledger.summary(db, found, datetime.now(UTC), entries=20)
    except IdentityError as exc:
        raise ApiError(422, message_of(exc), Msg("use a known identity kind"), kind) from None


REQUEST_ID = r"^[A-Za-z0-9_\-:.]+$"


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: int = Field(ge=1, le=100_000_000, description="whole points to spend")
    request_id: str = Field(min_length=1, max_length=100, pattern=REQUEST_ID,
                            description="your id for this redemption: a retry with the same id redeems once")
    reason: str = Field(default="", max_length=200, examples=["积分兑换：保温杯"])


@router.post("/members/{customer_id}/redeem")
def redeem(customer_id: str, body: RedeemIn, user: Redeemer, db_url: DbUrl) -> dict[str, Any]:
    """Spend points (oldest-expiring lots first). 409 when the member has fewer than asked."""
    try:
        with transaction(db_url) as db:
            cid = _member(db, customer_id)
            booked = ledger.burn(db, cid, body.points, f"redeem:{user.username}:{body.request_id}",
                                 datetime.now(UTC), reason=body.reason or "redeem",
                                 detail={"by": user.username, "request_id": body.request_id})
            entry = booked.entry
            return {"customer_id": cid, "points": -entry.points, "balance": entry.balance_after,
                    "entry": entry.id, "repeated": booked.repeated}
    except ledger.InsufficientPoints as exc:
        raise ApiError(409, Msg("the member has %(available)s points; %(wanted)s were asked",
                                available=exc.available, wanted=exc.wanted),
                       Msg("redeem fewer points"), "points", available=exc.available) from None



class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=200, description="why the exchange is cancelled (kept on the ledger)",
                        examples=["赠品缺货"])


RequestId = Annotated[str, Path(min_length=1, max_length=100, pattern=REQUEST_ID,
                                description="the `request_id` your redeem call used")]


@router.post("/members/{customer_id}/redemptions/{request_id}/cancel")
def cancel_redemption(customer_id: str, request_id: RequestId, user: Redeemer, db_url: DbUrl,
                      body: Annotated[CancelIn | None, Body()] = None) -> dict[str, Any]:
    """Cancel a redemption you made (the gift is out of stock, its order was cancelled, a mistake): its
    points go back, whole, to the lots they were taken from, each with its own expiry. Points of a lot
    that has expired since are not revived (``lapsed``); points that come back repay a debt left by
    refunds first (``debt_repaid``). Once per redemption: a retried or concurrent cancel books nothing
    more and answers 200 with the same booking (``repeated: true``). 404 when the member has no
    redemption with this ``request_id`` made by the caller (redeem ids belong to the user or token that
    redeemed, as they do for the redeem call)."""
    reason = (body.reason.strip() if body else "") or "cancelled"
    try:
        with transaction(db_url) as db:
            cid = _member(db, customer_id)
            booked = ledger.cancel_redemption(db, cid, f"redeem:{user.username}:{request_id}", datetime.now(UTC),
                                              reason=reason, by=user.username)
            return cancelled(cid, booked)
    except ledger.RedemptionNotFound:
        raise ApiError(404, Msg("customer '%(customer_id)s' has no redemption '%(request_id)s' made by you",
                                customer_id=customer_id, request_id=request_id),
                       Msg("give the request_id of a redemption you made for this member"), "request_id") from None


def cancelled(customer_id: str, booked: ledger.Booked) -> dict[str, Any]:
    """The answer to a cancellation, the same for the first call and every retry."""
    entry = booked.entry
    detail = entry.detail or {}
    return {"customer_id": customer_id, "request_id": detail.get("request_id", ""), "points": entry.points,
            "redeemed": detail.get("redeemed", 0), "lapsed": booked.lapsed,
            "debt_repaid": detail.get("debt_repaid", 0), "balance": entry.balance_after,
            "redemption": detail.get("redemption"), "entry": entry.id, "repeated": booked.repeated}
