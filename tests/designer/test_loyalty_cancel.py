"""Cancelling a redemption over HTTP: the API a shop calls with its own request id (once; a retry answers the
same 200), what it refuses (another member's, another caller's, not a redemption, malformed ids, roles that
may not), and the cancel button on the customer page's points ledger."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.loyalty_models import LoyaltyEntry
from engine.db.session import session_factory, transaction
from tests.designer.pages_kit import Browser, add_users, build_app

pytestmark = pytest.mark.usefixtures("cheap_passwords")


@pytest.fixture
def app(db_url: str) -> Any:
    add_users(db_url)
    return build_app(db_url)


def member(db_url: str, phone: str, order: str, fen: int) -> str:
    """A member with one paid order's points (the program enabled)."""
    from activities.loyalty.program import ProgramConfig, load, save

    with transaction(db_url) as db:
        if not load(db).enabled:
            save(db, ProgramConfig(enabled=True), "admin")
        cid = resolve(db, {"phone": phone}, phone)
    ingest.store(ingest.EventIn.model_validate({"id": order, "type": "order.paid", "customer": {"customer_id": cid},
                                                "payload": {"order_id": order, "amount_fen": fen}}), db_url)
    return cid


def api(browser: Browser, path: str, body: Any = None) -> Any:
    return browser.client.post(path, json=body, headers={"X-CSRF-Token": browser.csrf})


def cancels(db_url: str) -> int:
    with session_factory(db_url)() as db:
        return int(db.scalar(select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.kind == "cancel")) or 0)


def cancelled_events(db_url: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(
            models.EventRecord.type == "loyalty.redemption_cancelled")))


def test_a_shop_cancels_its_redemption_once_and_a_retry_answers_the_same(app: Any, db_url: str) -> None:
    dev = Browser(app, "developer")
    cid = member(db_url, "13800138000", "o1", 50_000)  # 500 points
    redeemed = api(dev, f"/api/loyalty/members/{cid}/redeem", {"points": 200, "request_id": "mp-1"}).json()
    first = api(dev, f"/api/loyalty/members/{cid}/redemptions/mp-1/cancel", {"reason": "赠品缺货"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body == {"customer_id": cid, "request_id": "mp-1", "points": 200, "redeemed": 200, "lapsed": 0,
                    "debt_repaid": 0, "balance": 500, "redemption": redeemed["entry"], "entry": body["entry"],
                    "repeated": False}
    again = api(dev, f"/api/loyalty/members/{cid}/redemptions/mp-1/cancel")  # no body: a retry as it comes
    assert again.status_code == 200 and again.json() == {**body, "repeated": True}
    assert dev.client.get(f"/api/loyalty/members/{cid}").json()["balance"] == 500
    assert cancels(db_url) == 1
    [told] = cancelled_events(db_url)
    assert told.external_id == "cancelled:redeem:developer:mp-1"
    assert told.payload == {"points": 200, "lapsed": 0, "redeemed": 200, "balance": 500, "reason": "赠品缺货",
                            "request_id": "mp-1", "source": "redeem:developer:mp-1"}
    ledger_lines = dev.client.get(f"/api/loyalty/members/{cid}").json()["ledger"]
    assert [(e["kind"], e["points"], e.get("cancelled")) for e in ledger_lines] == [
        ("cancel", 200, None), ("burn", -200, True), ("earn", 500, None)]
    # the route documents itself
    spec = app.openapi()["paths"]["/api/loyalty/members/{customer_id}/redemptions/{request_id}/cancel"]["post"]
    assert "once per redemption" in spec["description"].lower() and "404" in spec["description"]


def test_the_cancel_api_refuses_what_is_not_the_callers_to_cancel(app: Any, db_url: str) -> None:
    dev, mia = Browser(app, "developer"), Browser(app, "marketer")
    cid = member(db_url, "13800138000", "o1", 50_000)
    other = member(db_url, "13900139000", "o2", 50_000)
    api(dev, f"/api/loyalty/members/{other}/redeem", {"points": 100, "request_id": "theirs"})
    api(mia, f"/api/loyalty/members/{cid}/redeem", {"points": 100, "request_id": "by-mia"})

    def refused(browser: Browser, customer: str, request_id: str, body: Any = None) -> Any:
        return api(browser, f"/api/loyalty/members/{customer}/redemptions/{request_id}/cancel", body)

    # another customer's redemption, asked for through this customer: not found, and named
    wrong = refused(dev, cid, "theirs")
    assert wrong.status_code == 404 and "theirs" in wrong.json()["detail"]["message"], wrong.text
    assert wrong.json()["detail"]["field"] == "request_id"
    # another user's redemption: redeem ids are per caller, so the developer's token cannot reach the marketer's
    assert refused(dev, cid, "by-mia").status_code == 404
    assert refused(dev, cid, "never-made").status_code == 404
    assert refused(dev, "no-such-customer", "theirs").status_code == 404
    # an earn or a refund is not a redemption whatever its id looks like: ids are the caller's own namespace
    assert refused(dev, cid, "o1").status_code == 404
    for bad in ["x" * 101, "x" * 5000, "a%20b", "semi;colon", "%E4%B8%AD", "%00"]:
        r = refused(dev, cid, bad)
        assert r.status_code in (404, 422) and r.status_code != 500, (bad, r.status_code)
        assert r.status_code == 422 or bad == "%00", (bad, r.text)
    assert refused(dev, other, "theirs", {"reason": "x" * 201}).status_code == 422
    assert refused(dev, other, "theirs", {"points": 5}).status_code == 422  # whole only: no partial amounts
    for role in ("ops", "agent", "finance"):
        assert refused(Browser(app, role), other, "theirs").status_code == 403, role
    assert cancels(db_url) == 0 and cancelled_events(db_url) == []
    # the marketer cancels their own, through the same route
    assert refused(mia, cid, "by-mia").json()["points"] == 100
    assert refused(dev, other, "theirs").json()["points"] == 100
    assert cancels(db_url) == 2


def test_the_customer_page_cancels_a_redemption_from_its_ledger_line(app: Any, db_url: str) -> None:
    mia = Browser(app, "marketer")
    cid = member(db_url, "13800138000", "o1", 50_000)
    other = member(db_url, "13900139000", "o2", 50_000)
    mia.post_form(f"/customers/{cid}/loyalty/redeem", {"points": "120", "request_id": "abcdef123456",
                                                       "reason": "保温杯"})
    page = mia.get(f"/customers/{cid}").text
    assert 'id="points-balance">380<' in page and "撤销兑换" in page
    with session_factory(db_url)() as db:
        burn = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.kind == "burn"))
        earn = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.kind == "earn", LoyaltyEntry.customer_id == cid))
        theirs = db.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.customer_id == other))
    assert f"/loyalty/redemptions/{burn}/cancel" in page and f"/loyalty/redemptions/{earn}/cancel" not in page
    # htmx posts, follows the redirect and swaps the points section: the server's answer is what shows
    swapped = mia.client.post(f"/customers/{cid}/loyalty/redemptions/{burn}/cancel",
                              data={"csrf_token": mia.csrf}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200 and "已撤销兑换：退回 120 积分" in swapped.text, swapped.text[-2000:]
    assert 'id="points-balance">500<' in swapped.text
    # a second click books nothing and says so
    again = mia.post_form(f"/customers/{cid}/loyalty/redemptions/{burn}/cancel")
    assert again.status_code == 303 and "cancel_repeated=1" in again.headers["location"]
    page = mia.get(again.headers["location"]).text
    assert "此兑换已撤销" in page and 'id="points-balance">500<' in page
    assert f"/loyalty/redemptions/{burn}/cancel" not in page and "已撤销<" in page  # the line is marked, no button
    # an earn, another customer's redemption, a huge or malformed id: nothing booked, the reason shown
    for entry in (earn, theirs, 10**12):
        r = mia.post_form(f"/customers/{cid}/loyalty/redemptions/{entry}/cancel")
        assert r.status_code == 303 and f"cancel_missing={entry}" in r.headers["location"], entry
        assert f"此客户没有兑换记录 {entry}" in mia.get(r.headers["location"]).text
    for bad in ("99999999999999999999999", "-1", "abc"):
        assert mia.post_form(f"/customers/{cid}/loyalty/redemptions/{bad}/cancel").status_code == 422, bad
    assert mia.post_form(f"/customers/{cid}/loyalty/redemptions/{burn}/cancel", csrf=False).status_code == 403
    agent = Browser(app, "agent")
    assert f"/loyalty/redemptions/{burn}/cancel" not in agent.get(f"/customers/{other}").text
    assert agent.post_form(f"/customers/{other}/loyalty/redemptions/{theirs}/cancel").status_code == 403
    assert cancels(db_url) == 1 and len(cancelled_events(db_url)) == 1
