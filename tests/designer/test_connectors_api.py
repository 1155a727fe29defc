"""Connector configuration: the admin-only JSON API and the settings page. Secrets are write-only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.email import EmailConnector
from connectors.sms import SmsConnector
from connectors.webhook.connector import WebhookConnector
from designer.auth import unguarded_routes
from designer.connectors import api as api_connectors
from engine import auth
from engine import connectors as configured
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.designer.pages_kit import PASSWORD, Browser, add_users
from tests.e2e.browser import include_once

INSTALLED = {"email": EmailConnector, "sms": SmsConnector, "webhook": WebhookConnector}
SMTP_PASSWORD = "smtp-app-password-9f8e7d"
HOOK_SECRET = "whsec-0123456789abcdef"


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch, cheap_passwords: None) -> None:
    """The three connectors as if registered under the ``tideflow.connectors`` entry point group."""
    monkeypatch.setattr(configured, "connector_classes", lambda: dict(INSTALLED))


@pytest.fixture
def app(db_url: str) -> FastAPI:
    app = api_connectors_app(db_url)
    add_users(db_url)
    return app


def api_connectors_app(db_url: str) -> FastAPI:
    from designer.app import create_app

    app = create_app(db_url, connect=False)
    include_once(app, api_connectors.router)
    return app


def token_client(app: FastAPI, db_url: str, username: str) -> TestClient:
    with transaction(db_url) as db:
        user = db.scalar(select(models.User).where(models.User.username == username))
        assert user is not None
        token = auth.create_token(db, user, "test")
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def admin(app: FastAPI, db_url: str) -> TestClient:
    return token_client(app, db_url, "admin")


@pytest.fixture
def marketer(app: FastAPI, db_url: str) -> TestClient:
    return token_client(app, db_url, "marketer")


def email_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "email", "name": "企业邮箱",
        "settings": {"host": "smtp.exmail.qq.com", "port": 587, "from_address": "hello@shop.example.com",
                     "from_name": "潮汐商城"},
        "secrets": {"username": "hello@shop.example.com", "password": SMTP_PASSWORD},
    }
    return {**body, **overrides}


def stored_row(db_url: str, connector_id: str) -> models.ConnectorConfig | None:
    with session_factory(db_url)() as db:
        return db.get(models.ConnectorConfig, connector_id)


def test_every_route_is_guarded(app: FastAPI) -> None:
    assert unguarded_routes(app) == []


def test_kinds_come_with_their_schemas(admin: TestClient) -> None:
    r = admin.get("/api/connectors")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["connectors"] == []
    kinds = {k["kind"]: k for k in listing["kinds"]}
    assert set(kinds) == {"email", "sms", "webhook"}
    email = kinds["email"]
    assert email["channels"] == ["email"] and email["inbound"] is False
    assert email["label"]["zh-CN"] == "邮件（SMTP）"
    assert email["settings_schema"]["properties"]["port"]["default"] == 587
    assert email["secrets_schema"]["properties"]["password"]["writeOnly"] is True
    assert kinds["webhook"]["inbound"] is True and kinds["webhook"]["channels"] == ["webhook"]
    assert "secret" in kinds["webhook"]["secrets_schema"]["required"]


def test_create_update_and_secrets_are_write_only(admin: TestClient, db_url: str) -> None:
    r = admin.put("/api/connectors/smtp-main", json=email_body())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secrets_set"] == {"username": True, "password": True}
    assert created["settings"]["host"] == "smtp.exmail.qq.com" and created["settings"]["starttls"] is True
    assert created["hook_path"] is None and created["channels"] == ["email"]
    row = stored_row(db_url, "smtp-main")
    assert row is not None and SMTP_PASSWORD not in row.secrets and "password" not in row.secrets  # encrypted

    # settings change without secrets: the stored secrets stay
    r = admin.put("/api/connectors/smtp-main", json={**email_body(secrets=None), "secrets": {},
                                                     "settings": {**email_body()["settings"], "port": 465,
                                                                  "starttls": False, "ssl": True}})
    assert r.status_code == 200, r.text
    with session_factory(db_url)() as db:
        loaded = configured.load(db, "smtp-main")
    assert loaded is not None and loaded.settings.port == 465 and loaded.settings.ssl
    assert loaded.secrets.password.get_secret_value() == SMTP_PASSWORD

    # null clears one secret, the other stays
    r = admin.put("/api/connectors/smtp-main", json=email_body(secrets={"password": None}))
    assert r.json()["secrets_set"] == {"username": True, "password": False}

    for response in (admin.get("/api/connectors"), admin.get("/api/connectors/smtp-main"), r):
        assert SMTP_PASSWORD not in response.text
    assert admin.get("/api/connectors").json()["connectors"][0]["id"] == "smtp-main"


def test_the_webhook_connector_shows_its_callback_path(admin: TestClient) -> None:
    r = admin.put("/api/connectors/crm", json={"kind": "webhook", "name": "CRM", "settings": {},
                                               "secrets": {"secret": HOOK_SECRET}})
    assert r.status_code == 201 and r.json()["hook_path"] == "/hooks/crm"
    assert r.json()["secrets_set"] == {"secret": True, "previous_secret": False}


@pytest.mark.parametrize(("connector_id", "body", "status", "field"), [
    ("smtp", email_body(settings={"host": "smtp.example.com", "from_address": "hi@x.example", "port": 70000}), 422,
     "settings.port"),
    ("smtp", email_body(settings={"host": "smtp.example.com"}), 422, "settings.from_address"),
    ("smtp", email_body(secrets={"token": "x"}), 422, "secrets.token"),
    ("hook", {"kind": "webhook", "name": "h", "secrets": {"secret": "too-short"}}, 422, "secrets.secret"),
    ("hook", {"kind": "webhook", "name": "h"}, 422, "secrets.secret"),
    ("x", {"kind": "fax", "name": "fax"}, 422, "kind"),
    ("Bad_ID", email_body(), 422, "id"),
    ("smtp", {**email_body(), "colour": "red"}, 422, "colour"),
])
def test_problems_name_the_field(admin: TestClient, db_url: str, connector_id: str, body: dict[str, Any],
                                 status: int, field: str) -> None:
    r = admin.put(f"/api/connectors/{connector_id}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"] == field
    assert "too-short" not in r.text and stored_row(db_url, connector_id) is None


def test_the_kind_of_a_connector_cannot_change(admin: TestClient) -> None:
    assert admin.put("/api/connectors/c1", json=email_body()).status_code == 201
    r = admin.put("/api/connectors/c1", json={"kind": "webhook", "name": "x", "secrets": {"secret": HOOK_SECRET}})
    assert r.status_code == 409 and r.json()["detail"]["field"] == "kind"


def test_delete(admin: TestClient, db_url: str) -> None:
    admin.put("/api/connectors/smtp", json=email_body())
    assert admin.delete("/api/connectors/smtp").status_code == 204
    assert stored_row(db_url, "smtp") is None
    assert admin.delete("/api/connectors/smtp").status_code == 404
    assert admin.get("/api/connectors/smtp").status_code == 404


def test_saves_and_deletes_are_audited_without_secret_values(admin: TestClient, db_url: str) -> None:
    admin.put("/api/connectors/smtp", json=email_body())
    admin.put("/api/connectors/smtp", json=email_body(secrets={}))
    admin.delete("/api/connectors/smtp")
    with session_factory(db_url)() as db:
        entries = db.scalars(select(models.AuditEntry).where(models.AuditEntry.target == "smtp")
                             .order_by(models.AuditEntry.id)).all()
        actions = [(e.actor, e.action, e.detail.get("changed_secret_fields")) for e in entries]
        text = repr([(e.detail, e.before, e.after) for e in entries])
        created, _, deleted = entries
    assert created.before is None and created.after is not None and created.after["name"] == deleted.before["name"]
    assert actions == [("admin", "connector.created", ["password", "username"]),
                       ("admin", "connector.updated", []), ("admin", "connector.deleted", None)]
    assert SMTP_PASSWORD not in text


def test_a_marketer_gets_403_and_never_a_secret(admin: TestClient, marketer: TestClient, app: FastAPI) -> None:
    admin.put("/api/connectors/smtp", json=email_body())
    for r in (marketer.get("/api/connectors"), marketer.get("/api/connectors/smtp"),
              marketer.put("/api/connectors/smtp", json=email_body(secrets={"password": "stolen"})),
              marketer.delete("/api/connectors/smtp"), marketer.get("/settings/connectors")):
        assert r.status_code == 403, r.text
        assert SMTP_PASSWORD not in r.text and "smtp.exmail" not in r.text
    assert TestClient(app).get("/api/connectors").status_code == 401


def browser(app: FastAPI, username: str = "admin", lang: str = "zh-CN") -> Browser:
    return Browser(app, username, lang)


def test_settings_page_shows_forms_and_never_secret_values(admin: TestClient, app: FastAPI) -> None:
    admin.put("/api/connectors/smtp", json=email_body())
    admin.put("/api/connectors/crm", json={"kind": "webhook", "name": "CRM 回调", "settings": {},
                                           "secrets": {"secret": HOOK_SECRET}})
    page = browser(app).get("/settings/connectors")
    assert page.status_code == 200, page.text
    html = page.text
    assert "连接器" in html and "企业邮箱" in html and "CRM 回调" in html
    assert SMTP_PASSWORD not in html and HOOK_SECRET not in html
    assert 'name="secrets.password" value=""' in html and "已设置" in html
    assert "http://testserver/hooks/crm" in html
    assert 'value="smtp.exmail.qq.com"' in html
    assert 'id="add-sms"' in html and 'name="settings.body_template"' in html
    english = browser(app, lang="en").get("/settings/connectors?lang=en").text
    assert "Connectors" in english and '<span class="muted secret-state">set · leave empty to keep' in english
    assert SMTP_PASSWORD not in english


def test_settings_page_saves_keeps_blank_secrets_and_shows_problems(admin: TestClient, app: FastAPI,
                                                                     db_url: str) -> None:
    admin.put("/api/connectors/smtp", json=email_body())
    b = browser(app)
    form = {"kind": "email", "name": "新名字", "enabled": "true", "settings.host": "smtp.qiye.aliyun.com",
            "settings.port": "465", "settings.ssl": "true", "settings.from_address": "hi@shop.example.com",
            "settings.from_name": "", "settings.verify_tls": "true", "settings.timeout_seconds": "30",
            "settings.helo_name": "", "settings.list_unsubscribe": "", "secrets.username": "",
            "secrets.password": ""}
    r = b.post_form("/settings/connectors/smtp", form)
    assert r.status_code == 303 and r.headers["location"].startswith("/settings/connectors?notice=saved")
    with session_factory(db_url)() as db:
        loaded = configured.load(db, "smtp")
    assert loaded is not None and loaded.settings.host == "smtp.qiye.aliyun.com" and loaded.settings.ssl
    assert loaded.settings.starttls is False  # an unchecked checkbox is false
    assert loaded.secrets.password.get_secret_value() == SMTP_PASSWORD  # blank keeps the stored value
    assert stored_row(db_url, "smtp").name == "新名字"  # type: ignore[union-attr]

    bad = b.post_form("/settings/connectors/smtp", {**form, "settings.port": "abc", "secrets.password": "typed"})
    assert bad.status_code == 422 and "settings.port" in bad.text and "typed" not in bad.text
    bad = b.post_form("/settings/connectors/smtp", {**form, "settings.starttls": "true"})
    assert bad.status_code == 422 and "只能二选一" in bad.text  # the settings model's refusal, in the page's language
    assert b.post_form("/settings/connectors/smtp", form, csrf=False).status_code == 403


def test_settings_page_adds_and_deletes(app: FastAPI, db_url: str) -> None:
    b = browser(app)
    form = {"kind": "webhook", "id": "erp", "name": "ERP", "enabled": "true", "settings.url": "",
            "settings.tolerance_seconds": "300", "settings.timeout_seconds": "10", "settings.verify_tls": "true",
            "secrets.secret": HOOK_SECRET, "secrets.previous_secret": ""}
    r = b.post_form("/settings/connectors", form)
    assert r.status_code == 303, r.text
    row = stored_row(db_url, "erp")
    assert row is not None and row.kind == "webhook" and HOOK_SECRET not in row.secrets
    again = b.post_form("/settings/connectors", form)
    assert again.status_code == 422 and "ID 为「erp」的连接器已存在" in again.text  # the API's problem, in Chinese
    bad_id = b.post_form("/settings/connectors", {**form, "id": "ERP 2"})
    assert bad_id.status_code == 422 and re.search(r"<details id=\"add-webhook\" open>", bad_id.text)
    assert HOOK_SECRET not in bad_id.text
    assert b.post_form("/settings/connectors/erp/delete").status_code == 303
    assert stored_row(db_url, "erp") is None


def test_page_for_a_logged_out_visitor_redirects_to_login(app: FastAPI) -> None:
    r = TestClient(app).get("/settings/connectors", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert PASSWORD  # the kit's shared password is what Browser logs in with
