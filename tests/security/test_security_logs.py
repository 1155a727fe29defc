"""No secret and no unmasked personal data in the logs.

A representative slice of the app runs with every logger at DEBUG (SQLAlchemy, httpx, Temporal and
ours included): a login with a password, an API token created, connectors saved with secrets, events
with phone / email / bank card data, a journey that sends through a loopback SMS gateway, and a
delivery to /hooks with a wrong signature. Then every captured record — message with its arguments
rendered, exception text included — is searched for the secrets and the personal data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.email import EmailConnector
from connectors.sms import SmsConnector
from connectors.webhook.connector import WebhookConnector
from connectors.webhook.signing import sign_payload
from connectors.wecom.connector import WeComConnector
from designer.app import create_app
from engine import auth, logs
from engine import connectors as configured
from engine import secrets as vault
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.journeys import ACTIVE
from engine.router import Router
from engine.worker import build_worker
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.loopback import Reply
from tests.waiting import until

PASSWORD = "Sup3r-secret-passw0rd!"
HOOK_SECRET = "whsec-logscan-0123456789abcdef"
SMS_KEY = "sms-apikey-9f8e7d6c5b4a"
WECOM_TOKEN = "wecomTokenQ1w2e3r4"
WECOM_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
WECOM_SECRET = "wecom-corp-secret-z9y8x7w6"
PHONE = "13912345678"
EMAIL = "li.lei.private@example.org"
CARD = "6222021234567890128"  # passes the Luhn check
INSTALLED = {"email": EmailConnector, "sms": SmsConnector, "webhook": WebhookConnector, "wecom": WeComConnector}


class Capture(logging.Handler):
    """Keeps every record, formatted the way a real handler would format it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    changed: list[tuple[logging.Logger, int]] = [(root, root.level)]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in quiet:  # loggers that set their own level or do not propagate (uvicorn's access log)
        changed.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in changed:
            logger.setLevel(level)
            logger.removeHandler(handler)


@dataclass
class App:
    app: Any
    http: httpx.AsyncClient  # as the admin, by API token
    db_url: str
    admin_token: str


@pytest.fixture
async def app(time_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, cheap_passwords: None) -> AsyncIterator[App]:
    monkeypatch.setattr(configured, "connector_classes", lambda: dict(INSTALLED))
    queue = f"logscan-{uuid.uuid4().hex[:8]}"
    with transaction(db_url) as db:
        admin = auth.create_user(db, "boss", PASSWORD, "admin")
        token = auth.create_token(db, admin, "setup")
    application = create_app(db_url, connect=False)
    application.state.router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://tideflow.test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        yield App(application, http, db_url, token)


def _variants(phone: str) -> list[str]:
    return [phone, f"{phone[:3]} {phone[3:7]} {phone[7:]}", f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"]


async def test_logs_hold_no_secret_and_no_unmasked_personal_data(app: App, captured: Capture) -> None:
    gateway = Loopback()
    with gateway:
        gateway.default = Reply(200, {"code": 0, "data": {"sid": "SM-1"}})
        secrets_seen = [PASSWORD, HOOK_SECRET, SMS_KEY, WECOM_TOKEN, WECOM_AES_KEY, WECOM_SECRET, app.admin_token,
                        vault.instance_key()]

        # a browser logs in with a password, then creates an API token
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.app), base_url="http://tideflow.test",
                                     ) as browser:
            await browser.get("/login")
            csrf = browser.cookies.get("tideflow_login_csrf") or ""
            r = await browser.post("/login", data={"username": "boss", "password": "wrong-" + PASSWORD,
                                                   "csrf_token": csrf})
            assert r.status_code == 401
            r = await browser.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": csrf})
            assert r.status_code == 303, r.text
            session_cookie = browser.cookies.get("tideflow_session") or ""
            me = (await browser.get("/api/me")).json()
            r = await browser.post("/api/auth/tokens", json={"name": "ci"},
                                   headers={"X-CSRF-Token": me["csrf_token"]})
            assert r.status_code == 201, r.text
            new_token = r.json()["token"]
            secrets_seen += [session_cookie, me["csrf_token"], new_token]
            r = await browser.get("/api/me", headers={"Authorization": f"Bearer {new_token}x"})
            assert r.status_code == 401

        # connectors saved with secrets
        for connector_id, kind, settings, secrets in [
            ("shop-hook", "webhook", {}, {"secret": HOOK_SECRET}),
            ("sms-gw", "sms", {"url": gateway.url + "/api/send",
                               "body_template": json.dumps({"mobile": "{phone}", "content": "{content}"}),
                               "auth_header": "Authorization", "auth_scheme": "Bearer", "phone_format": "national",
                               "success_path": "code", "success_value": "0", "message_id_path": "data.sid"},
             {"api_key": SMS_KEY}),
            ("wecom-main", "wecom", {"corp_id": "ww0123456789"},
             {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES_KEY, "secret": WECOM_SECRET}),
        ]:
            r = await app.http.put(f"/api/connectors/{connector_id}", json={
                "kind": kind, "name": connector_id, "settings": settings, "secrets": secrets})
            assert r.status_code == 201, r.text
        r = await app.http.put("/api/connectors/sms-gw", json={"kind": "sms", "name": "x", "secrets": {
            "api_key": SMS_KEY, "unknown_field": SMS_KEY}})
        assert r.status_code == 422

        # a journey that texts the customer through the loopback gateway
        flow = {"schema": "tideflow/flow@1", "id": "logscan", "name": "logscan", "kind": "journey", "settings": {},
                "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "order.delivered"}},
                          {"id": "hello", "type": "action.send_message", "config": {
                              "channel": "sms", "category": "transactional",
                              "template": "{{ customer.name }}，您的手机 {{ event.payload.phone }}，"
                                          "卡号 {{ event.payload.card }}，邮箱 {{ event.payload.email }}"}}],
                "edges": [{"from": "start", "port": "out", "to": "hello"}]}
        assert (await app.http.post("/api/flows", json=flow)).status_code == 201
        assert (await app.http.post("/api/flows/logscan/publish")).status_code == 201

        # events with phone / email identities: through the API and through the signed hook
        body = {"id": "evt-logscan-1", "type": "order.delivered",
                "customer": {"phone": PHONE, "email": EMAIL},
                "profile": {"name": "李雷", "attributes": {"bank_card": CARD}},
                "payload": {"phone": PHONE, "card": CARD, "email": EMAIL}}
        r = await app.http.post("/api/events", json=body)
        assert r.status_code < 300, r.text
        raw = json.dumps({**body, "id": "evt-logscan-2", "type": "custom.note"}, ensure_ascii=False).encode()
        signed = sign_payload(HOOK_SECRET, raw, int(time.time()))
        hook = app.http.build_request("POST", "/hooks/shop-hook", content=raw, headers={
            "Content-Type": "application/json", "X-Tideflow-Signature": signed})
        del hook.headers["Authorization"]
        assert (await app.http.send(hook)).status_code == 200
        # a delivery with a wrong signature (made with another secret)
        forged = app.http.build_request("POST", "/hooks/shop-hook", content=raw, headers={
            "Content-Type": "application/json",
            "X-Tideflow-Signature": sign_payload("not-the-secret-" + HOOK_SECRET, raw, int(time.time()))})
        del forged.headers["Authorization"]
        assert (await app.http.send(forged)).status_code == 401
        # an unknown route and a bad request, with personal data in the URL
        await app.http.get(f"/api/customers?phone={PHONE}&email={EMAIL}")
        await app.http.post("/api/events", json={"id": "bad", "customer": {"phone": PHONE}})

        [sent] = await asyncio.to_thread(gateway.wait_for, 1)  # never block the loop the worker runs on
        assert PHONE in sent.body.decode()  # the message itself reached the gateway unmasked

        # the journey ended (its activity logs are in the capture)
        def ended() -> bool:
            with session_factory(app.db_url)() as db:
                status = db.scalar(select(models.Journey.status).where(models.Journey.flow_id == "logscan"))
            return status is not None and status not in ACTIVE

        await until(ended, "the logscan journey to end", timeout=10)

    text = "\n".join(captured.lines)
    assert len(captured.lines) > 20, "the capture saw the app's logs"
    assert "sqlalchemy" in text and "httpx" in text  # DEBUG/INFO records of the libraries were captured
    assert f"{PHONE[:3]}****{PHONE[-4:]}" in text and "l***@example.org" in text  # the URL, masked
    leaks = [f"secret {s[:4]}…" for s in secrets_seen if s and s in text]
    pii = [*_variants(PHONE), EMAIL, CARD, f"{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:16]} {CARD[16:]}"]
    leaks += [f"personal data {p[:3]}…" for p in pii if p in text]
    leaks += [f"email {m}" for m in re.findall(r"[\w.+-]+@example\.org", text) if not m.startswith(("l***", "*"))]
    if leaks:
        context = [line[:300] for line in captured.lines
                   if any(s and s in line for s in [*secrets_seen, *pii])][:10]
        pytest.fail(f"found in the logs: {leaks}\n" + "\n".join(context))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET https://qyapi.weixin.qq.com/cgi-bin/user/get?access_token=AbCdEf123456&userid=zhang 200",
         "GET https://qyapi.weixin.qq.com/cgi-bin/user/get?access_token=****&userid=zhang 200"),
        ("Authorization: Bearer tf_abcdefghijklmnopqrstuvwxyz0123", "Authorization: Bearer tf_****"),
        ("token tf_abcdefghijklmnopqrstuvwxyz0123 used", "token tf_**** used"),
        ('headers {"x-api-key": "sk-live-123456"}', 'headers {"x-api-key": "****"}'),
        ("{'secret': 'whsec-0123456789', 'encoding_aes_key': 'abcdefghijk'}",
         "{'secret': '****', 'encoding_aes_key': '****'}"),
        ("password=hunter22 user=li", "password=**** user=li"),
        ("phone 13800138000, +86 139-1234-5678", "phone 138****8000, +86 139****5678"),
        ("mail li.lei.private@example.org", "mail l***@example.org"),
        ("card 6222 0212 3456 7890 128", "card **** **** **** 0128"),
        ("design=blue tokens=5 user:admin failed_logins=3", "design=blue tokens=5 user:admin failed_logins=3"),
    ],
)
def test_log_lines_are_cleaned(line: str, expected: str) -> None:
    assert logs.clean(line) == expected


def test_records_are_cleaned_when_made_whoever_logs_them(captured: Capture) -> None:
    logs.install()
    logs.install()  # idempotent: one layer of cleaning
    factory = logging.getLogRecordFactory()
    try:
        other = logging.getLogger("some.library")
        other.info("calling %s with api_key=%s", f"https://api.example.com/?phone={PHONE}", SMS_KEY)
        try:
            raise ValueError(f"gateway refused {PHONE} with api_key={SMS_KEY}")
        except ValueError:
            other.exception("send failed")
        text = "\n".join(captured.lines)
        assert PHONE not in text and SMS_KEY not in text
        assert f"phone={PHONE[:3]}****{PHONE[-4:]}" in text and "ValueError: gateway refused" in text
    finally:
        assert logging.getLogRecordFactory() is factory
