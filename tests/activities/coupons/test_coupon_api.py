"""The coupon campaign API: create (money never a float), list, counts, status changes, roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from activities.coupons.redemption import redeem_from_event
from designer.app import create_app
from designer.coupons.api import router
from engine import auth
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.activities.coupons.coupon_kit import issue, make_customer

BODY: dict[str, Any] = {"id": "welcome-20", "name": "新客立减20元", "value": "20.00", "total_stock": 3,
                        "daily_budget": 100, "validity_days": 7, "code_prefix": "new20-"}


@pytest.fixture
def client(db_url: str, cheap_passwords: None) -> Iterator[TestClient]:
    app = create_app(db_url, connect=False)
    with TestClient(app) as test_client:
        yield test_client


def token_for(db_url: str, role: str) -> dict[str, str]:
    with transaction(db_url) as db:
        user = auth.create_user(db, f"{role}-user", "a-long-password", role)
        return {"Authorization": f"Bearer {auth.create_token(db, user, 't')}"}


@pytest.fixture
def marketer(db_url: str) -> dict[str, str]:
    return token_for(db_url, "marketer")


def test_every_coupon_route_needs_a_login(client: TestClient) -> None:
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes} == {"/api/coupon-campaigns", "/api/coupon-campaigns/{campaign_id}",
                                        "/api/coupon-campaigns/{campaign_id}/status",
                                        "/api/coupon-campaigns/{campaign_id}/issue"}
    for route in routes:
        for method in route.methods or ():
            r = client.request(method, route.path.replace("{campaign_id}", "welcome-20"), json={})
            assert r.status_code == 401, f"{method} {route.path} answered {r.status_code} without a login"


def test_create_with_yuan_text_and_read_it_back(client: TestClient, marketer: dict[str, str], db_url: str) -> None:
    r = client.post("/api/coupon-campaigns", json=BODY, headers=marketer)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["value_fen"] == 2000 and made["value_yuan"] == "20.00" and made["code_prefix"] == "NEW20-"
    assert made["status"] == "active" and made["per_customer_limit"] == 1
    assert made["counts"]["issued"] == 0 and made["counts"]["remaining_stock"] == 3
    with session_factory(db_url)() as db:
        audit = db.scalars(select(models.AuditEntry).where(models.AuditEntry.target == "welcome-20")).all()
    assert [(a.actor, a.action) for a in audit] == [("marketer-user", "coupon_campaign.created")]
    again = client.get("/api/coupon-campaigns/welcome-20", headers=marketer).json()
    assert again["name"] == "新客立减20元" and again["value_fen"] == 2000


def test_integer_values_are_fen(client: TestClient, marketer: dict[str, str]) -> None:
    r = client.post("/api/coupon-campaigns", json={"id": "vip", "name": "VIP", "value": 500}, headers=marketer)
    assert r.status_code == 201 and r.json()["value_yuan"] == "5.00"
    assert r.json()["total_stock"] is None and r.json()["counts"]["remaining_stock"] is None


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"value": 20.5}, "value", "never a float"),
    ({"value": 20.0}, "value", "never a float"),
    ({"value": "20.005"}, "value", "decimal places"),
    ({"value": "-1"}, "value", "negative"),
    ({"total_stock": -1}, "total_stock", "should be at least 0"),
    ({"per_customer_limit": 0}, "per_customer_limit", "should be at least 1"),
    ({"code_prefix": "券"}, "code_prefix", "prefix"),
    ({"id": "has space"}, "id", "pattern"),
    ({"valid_from": "2026-12-01T00:00:00"}, "valid_from", "timezone"),
    ({"valid_from": "2026-12-01T00:00:00+08:00", "valid_until": "2026-11-01T00:00:00+08:00"}, "valid_until",
     "after valid_from"),
    ({"colour": "red"}, "colour", "unknown field"),
])
def test_invalid_campaigns_name_the_field(client: TestClient, marketer: dict[str, str], change: dict[str, Any],
                                          field: str, says: str) -> None:
    r = client.post("/api/coupon-campaigns", json={**BODY, **change}, headers=marketer)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field and says in detail["message"] and detail["fix"]


def test_missing_value_is_named(client: TestClient, marketer: dict[str, str]) -> None:
    body = {k: v for k, v in BODY.items() if k != "value"}
    detail = client.post("/api/coupon-campaigns", json=body, headers=marketer).json()["detail"]
    assert detail["field"] == "value" and "add 'value'" in detail["fix"]


def test_a_duplicate_id_is_a_conflict(client: TestClient, marketer: dict[str, str]) -> None:
    assert client.post("/api/coupon-campaigns", json=BODY, headers=marketer).status_code == 201
    r = client.post("/api/coupon-campaigns", json={**BODY, "name": "other"}, headers=marketer)
    assert r.status_code == 409 and r.json()["detail"]["field"] == "id"


def test_counts_show_issued_redeemed_remaining_and_today(client: TestClient, marketer: dict[str, str],
                                                         db_url: str) -> None:
    client.post("/api/coupon-campaigns", json={**BODY, "per_customer_limit": 2}, headers=marketer)
    now = datetime.now(UTC)
    cid = make_customer(db_url)
    first = issue(db_url, "welcome-20", cid, now=now)
    issue(db_url, "welcome-20", cid, now=now)
    issue(db_url, "welcome-20", make_customer(db_url), now=now - timedelta(days=10))  # expired by now
    with transaction(db_url) as db:
        redeem_from_event(db, models.EventRecord(source="api", external_id="o1", type="order.paid", customer_id=cid,
                                                 payload={"order_id": "E1", "coupon_code": first.code},
                                                 occurred_at=now))
    counts = client.get("/api/coupon-campaigns/welcome-20", headers=marketer).json()["counts"]
    assert {k: counts[k] for k in ("issued", "redeemed", "expired", "remaining_stock", "issued_today")} == {
        "issued": 3, "redeemed": 1, "expired": 1, "remaining_stock": 0, "issued_today": 2}
    listed = client.get("/api/coupon-campaigns", headers=marketer).json()
    assert [c["id"] for c in listed] == ["welcome-20"] and listed[0]["counts"] == counts


def test_list_is_newest_first_and_filters_by_status(client: TestClient, marketer: dict[str, str]) -> None:
    for name in ("a", "b", "c"):
        client.post("/api/coupon-campaigns", json={"id": name, "name": name, "value": 100}, headers=marketer)
    client.post("/api/coupon-campaigns/b/status", json={"status": "paused"}, headers=marketer)
    assert [c["id"] for c in client.get("/api/coupon-campaigns", headers=marketer).json()] == ["c", "b", "a"]
    paused = client.get("/api/coupon-campaigns?status=paused", headers=marketer).json()
    assert [c["id"] for c in paused] == ["b"]
    assert client.get("/api/coupon-campaigns?status=gone", headers=marketer).status_code == 422


def test_status_changes_and_ending_is_final(client: TestClient, marketer: dict[str, str], db_url: str) -> None:
    client.post("/api/coupon-campaigns", json=BODY, headers=marketer)
    url = "/api/coupon-campaigns/welcome-20/status"
    assert client.post(url, json={"status": "paused"}, headers=marketer).json()["status"] == "paused"
    assert issue(db_url, "welcome-20", make_customer(db_url)).reason == "campaign_not_active"
    assert client.post(url, json={"status": "active"}, headers=marketer).json()["status"] == "active"
    assert client.post(url, json={"status": "ended"}, headers=marketer).json()["status"] == "ended"
    again = client.post(url, json={"status": "active"}, headers=marketer)
    assert again.status_code == 409 and again.json()["detail"]["field"] == "status"
    assert client.post(url, json={"status": "ended"}, headers=marketer).status_code == 200
    bad = client.post(url, json={"status": "archived"}, headers=marketer)
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "status"
    with session_factory(db_url)() as db:
        actions = [(a.before, a.after) for a in db.scalars(select(models.AuditEntry)
                                                           .where(models.AuditEntry.action == "coupon_campaign.status")
                                                           .order_by(models.AuditEntry.id))]
    assert actions == [({"status": "active"}, {"status": "paused"}), ({"status": "paused"}, {"status": "active"}),
                       ({"status": "active"}, {"status": "ended"})]


def test_unknown_campaigns_are_404(client: TestClient, marketer: dict[str, str]) -> None:
    r = client.get("/api/coupon-campaigns/nope", headers=marketer)
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]["message"]
    assert client.post("/api/coupon-campaigns/nope/status", json={"status": "paused"},
                       headers=marketer).status_code == 404


def test_roles(client: TestClient, db_url: str) -> None:
    assert client.get("/api/coupon-campaigns").status_code == 401
    ops = token_for(db_url, "ops")
    assert client.get("/api/coupon-campaigns", headers=ops).status_code == 403
    assert client.post("/api/coupon-campaigns", json=BODY, headers=ops).status_code == 403
    admin = token_for(db_url, "admin")
    assert client.post("/api/coupon-campaigns", json=BODY, headers=admin).status_code == 201
