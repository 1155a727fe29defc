"""The assembled app: every route guarded, the home page, the catalogue endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from designer.app import create_app
from designer.auth import unguarded_routes
from engine import auth
from engine.db.session import transaction
from engine.registry import default_registry
from tideflow.demo import seed


@pytest.fixture
def client(db_url: str, cheap_passwords: None) -> TestClient:
    return TestClient(create_app(db_url, connect=False))


def test_every_route_has_an_auth_check(db_url: str) -> None:
    assert unguarded_routes(create_app(db_url, connect=False)) == []


def test_home_page_after_login_shows_flows_and_messages(client: TestClient, db_url: str) -> None:
    report = seed(db_url)
    assert report["admin"] is not None and report["token"].startswith("tf_")
    assert "welcome-new-contact v1" in report["published"] and report["customers"] > 0
    assert seed(db_url)["admin"] is None  # idempotent: nothing published or created twice
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    login = client.get("/login")
    csrf = login.cookies.get("tideflow_login_csrf") or client.cookies.get("tideflow_login_csrf")
    r = client.post("/login", data={"username": report["admin"]["username"],
                                    "password": report["admin"]["password"], "csrf_token": csrf or ""})
    assert r.status_code == 200, r.text
    page = client.get("/", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "新客欢迎" in page.text and "流程" in page.text
    assert "Flows" in client.get("/?lang=en").text


def test_catalogue_endpoints(client: TestClient, db_url: str) -> None:
    with transaction(db_url) as db:
        user = auth.create_user(db, "dev", "a-long-password", "developer")
        token = auth.create_token(db, user, "t")
    headers = {"Authorization": f"Bearer {token}"}
    types = client.get("/api/node-types", headers=headers).json()
    assert {t["type"] for t in types} == set(default_registry().types)
    send = next(t for t in types if t["type"] == "action.send_message")
    assert send["config_schema"]["properties"]["template"]["format"] == "template"
    assert send["label"] == {"zh-CN": "发送消息", "en": "Send message"}
    journey_only = {t["type"] for t in client.get("/api/node-types?kind=settlement", headers=headers).json()}
    assert "trigger.segment" not in journey_only
    catalogue = {e["type"]: e for e in client.get("/api/event-types", headers=headers).json()}
    assert catalogue["order.paid"]["label"]["zh-CN"] == "订单支付" and "youzan" in catalogue["order.paid"]["producers"]
    assert catalogue["wecom.contact_added"]["producers"] == ["wecom"]
    assert catalogue["lottery.prize_claimed"]["origin"] == "plugin"  # the example plugin's declared type
    assert client.get("/api/node-types").status_code == 401
    assert client.post("/api/flows", json={"id": "x", "name": "x"}, headers=headers).status_code == 403


def test_the_route_guard_check_sees_routes_of_included_routers(db_url: str) -> None:
    from fastapi import APIRouter

    app = create_app(db_url, connect=False)
    extra = APIRouter()

    @extra.get("/api/open")
    def _open() -> int:
        return 1

    app.include_router(extra)
    assert unguarded_routes(app) == ["GET /api/open"]


def test_every_whole_page_starts_its_head_from_the_shared_one(client: TestClient) -> None:
    """Pages that are whole documents (base.html and the standalone ones: login, print, sidebar, …) include
    layout/_head.html, so each carries the charset and the icon (a page without one makes the browser ask for
    /favicon.ico, a 404 in the console)."""
    from pathlib import Path

    templates = Path(create_app.__code__.co_filename).parent / "templates"
    whole = [p for p in templates.rglob("*.html") if p.read_text(encoding="utf-8").lstrip().lower()
             .startswith("<!doctype html")]
    assert len(whole) >= 7
    missing = [str(p.relative_to(templates)) for p in whole
               if '{% include "layout/_head.html" %}' not in p.read_text(encoding="utf-8")]
    assert missing == []
    login = client.get("/login")
    assert login.status_code == 200 and '<link rel="icon" href="/static/favicon.svg"' in login.text
    assert client.get("/static/favicon.svg").status_code == 200
