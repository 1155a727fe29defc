"""The WeCom sidebar API from a test: the loopback WeCom and a client of the designer app that signs in as a
sidebar user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.wecom.jsapi import reset_shared_apps
from designer.app import create_app
from engine import auth, connectors
from engine.customers import resolve
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, serve
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    reset_shared_apps()
    yield from serve(FakeWeCom())
    reset_shared_apps()


class Api:
    def __init__(self, client: TestClient, db_url: str) -> None:
        self.client, self.db_url, self.tokens = client, db_url, {}

    def add(self, name: str, role: str) -> None:
        with transaction(self.db_url) as db:
            user = auth.create_user(db, name, "a-long-password-1", role)
            self.tokens[name] = auth.create_token(db, user, "t")

    def call(self, who: str, method: str, path: str, body: Any = None, status: int = 200, **kw: Any) -> Any:
        r = self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"},
                                **kw)
        assert r.status_code == status, r.text
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


@pytest.fixture
def api(db_url: str, fake: FakeWeCom) -> Iterator[Api]:
    with transaction(db_url) as db:
        connectors.save(db, "wecom-main", "wecom", "企业微信", {
            "corp_id": WECOM_CORP_ID, "agent_id": SIDEBAR_AGENT_ID, "api_base": fake.url, "oauth_base": fake.url},
            {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        resolve(db, {"wecom_external_userid": "wmKnown01"}, "王小明")
    with TestClient(create_app(db_url, connect=False)) as client:
        a = Api(client, db_url)
        for name, role in (("mk", "marketer"), ("ops", "ops"), ("ops2", "ops"), ("ann", "agent"),
                           ("fay", "finance"), ("dev", "developer"), ("root", "admin")):
            a.add(name, role)
        yield a
