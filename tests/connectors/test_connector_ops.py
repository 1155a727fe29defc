"""The connectors API beyond settings (admin only): sync status with cursors, backlog and the last error;
a resync; unmapped messages; deleting a connector removes its cursors — against a fake JOS on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from designer.app import create_app
from engine import auth, shop_sync
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.connectors.jd_sync_kit import NOW, SHOP, configure_jd, jos
from tests.connectors.shop_platforms import FakeJos, jd_apply
from tests.connectors.taobao_sync_kit import polled_kinds
from tests.designer.pages_kit import add_users

__all__ = ["jos", "polled_kinds"]


@pytest.fixture
def clients(db_url: str, cheap_passwords: None) -> Iterator[dict[str, TestClient]]:
    add_users(db_url)
    with transaction(db_url) as db:
        tokens = {u.username: auth.create_token(db, u, "test") for u in db.scalars(select(models.User))}
    app = create_app(db_url, connect=False)
    yield {name: TestClient(app, headers={"Authorization": f"Bearer {token}"}) for name, token in tokens.items()}


def test_status_resync_unmapped_and_delete(db_url: str, jos: FakeJos, clients: dict[str, TestClient]) -> None:
    admin = clients["admin"]
    configure_jd(db_url, jos, returns=False)
    jos.applies += [jd_apply(7001, 1, NOW - timedelta(minutes=5), 1), jd_apply(7002, 2, NOW - timedelta(minutes=5), 42)]
    jos.fail_next({"error_response": {"code": "19", "zh_desc": "无效access_token", "en_desc": "Invalid access_token"}})
    with pytest.raises(Exception, match="access"):
        shop_sync.poll_connector(db_url, SHOP, now=NOW)
    failed = admin.get(f"/api/connectors/{SHOP}/status").json()
    assert failed["last_error"] and "access" in failed["last_error"] and failed["last_success_at"] is None
    shop_sync.poll_connector(db_url, SHOP, now=NOW)
    status = admin.get(f"/api/connectors/{SHOP}/status").json()
    assert status["polled"] and status["last_error"] is None and status["last_success_at"]
    assert {c["stream"] for c in status["cursors"]} >= {"orders", "refunds"}
    assert status["unrouted_events"] == 1 and status["unmapped_messages"] == 1  # status 42: kept raw
    unmapped = admin.get(f"/api/connectors/{SHOP}/unmapped").json()
    assert unmapped["total"] == 1 and unmapped["by_kind"] == {"refundapply:42": 1}
    assert '"status": 42' in unmapped["messages"][0]["raw"]

    since = (NOW - timedelta(days=2)).isoformat()
    r = admin.post(f"/api/connectors/{SHOP}/resync", json={"since": since})
    assert r.status_code == 202 and r.json()["since"] == since
    assert shop_sync.cursor_position(db_url, SHOP, "refunds") == NOW - timedelta(days=2)
    assert admin.post(f"/api/connectors/{SHOP}/resync", json={"since": "2026-11-20T00:00:00"}).status_code == 422
    assert admin.post(f"/api/connectors/{SHOP}/resync", json={"since": "2999-01-01T00:00:00+08:00"}).status_code == 422
    assert admin.post("/api/connectors/nope/resync").status_code == 404
    for role in ("marketer", "ops", "finance"):
        assert clients[role].get(f"/api/connectors/{SHOP}/status").status_code == 403
        assert clients[role].post(f"/api/connectors/{SHOP}/resync").status_code == 403

    assert admin.delete(f"/api/connectors/{SHOP}").status_code == 204
    with session_factory(db_url)() as db:
        assert db.scalars(select(models.ConnectorCursor).where(models.ConnectorCursor.connector_id == SHOP)).all() == []
    assert admin.get(f"/api/connectors/{SHOP}/status").status_code == 404
