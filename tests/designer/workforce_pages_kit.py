"""The workforce pages' app for tests without a browser: a WeCom connector on the fake WeCom server, two
staff, one archived message, the usual users (shared by the workforce page tests)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from connectors.wecom.connector import WeComConnector
from engine import auth
from engine import connectors as configured
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, fake_wecom
from tests.designer.pages_kit import add_users, build_app

__all__ = ["app", "fake_wecom"]


@pytest.fixture
def app(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    add_users(db_url)
    with transaction(db_url) as db:
        configured.save(db, "wecom-main", "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": fake_wecom.url},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        db.add(wf.WeComStaff(connector_id="wecom-main", userid="lisi", name="李四", departments=[7], status="active",
                             last_active_at=utcnow()))
        db.add(wf.ArchivedMessage(connector_id="wecom-main", msgid="m1", seq=1, sender="wmC1", tolist=["lisi"],
                                  direction="customer", staff_userid="lisi", customer_id="c-1",
                                  text="我的电话 138****8000", msgtime=utcnow(), msgtype="text"))
    for userid in ("zhangsan", "lisi"):
        fake_wecom.add_staff(userid, departments=(7,))
    fake_wecom.add_contact("wmC1", "zhangsan")
    return build_app(db_url)
