"""For the WeCom mass-send tests: the loopback WeCom set up as a corp with staff and customers (``corp``; the
test module must also offer ``fake_wecom``), and the send log per customer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom

CONNECTOR = "wecom-main"


@pytest.fixture
def corp(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(db_url) as db:  # images come from a host on 127.0.0.1, allowed for the tests
        configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": fake_wecom.url,
                                                         "image_hosts": ["127.0.0.1"]},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        db.add(wf.WorkforceSettings(connector_id=CONNECTOR, mass_quota_policy="day_1", at_limit="exclude"))
    fake_wecom.quota_policy = "day_1"
    for userid in ("zhangsan", "lisi"):
        fake_wecom.add_staff(userid)
    for external, owner in (("wmA", "zhangsan"), ("wmB", "zhangsan"), ("wmC", "zhangsan"), ("wmD", "lisi"),
                            ("wmE", "")):
        if owner:
            fake_wecom.add_contact(external, owner)
        attributes = {"wecom_follow_user": owner, "vip": external != "wmB"} if owner else {}
        store(EventIn(id=f"seed-{external}", type="customer.updated", customer={"wecom_external_userid": external},
                      profile={"name": external, "attributes": attributes}), db_url)
    return fake_wecom


def log(db_url: str) -> dict[str, str]:
    with session_factory(db_url)() as db:
        rows = db.execute(select(models.Identity.value, models.Message.status).join(
            models.Message, models.Message.customer_id == models.Identity.customer_id)).all()
    return dict(rows)
