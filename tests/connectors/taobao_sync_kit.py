"""Setting up the Taobao connector against the fake TOP gateway, and reading what its sync stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.jd.connector import JdConnector
from connectors.taobao.connector import TaobaoConnector
from engine import connectors as configured
from engine import shop_sync
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.connectors.shop_platforms import (
    TOP_APP_KEY,
    TOP_SECRET,
    TOP_SESSION,
    FakeTop,
)

SHOP = "tb-main"


@pytest.fixture(autouse=True)
def polled_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"taobao": TaobaoConnector, "jd": JdConnector})


def configure(db_url: str, connector_id: str, kind: str, settings: dict[str, Any], secrets: dict[str, Any],
              enabled: bool = True) -> None:
    with transaction(db_url) as db:
        configured.save(db, connector_id, kind, connector_id, settings, secrets, enabled=enabled)


def configure_taobao(db_url: str, top: FakeTop, backfill_hours: int = 1, **settings: Any) -> None:
    configure(db_url, SHOP, "taobao", {"app_key": TOP_APP_KEY, "shop": SHOP, "shop_type": "tmall",
                                       "gateway_url": top.url, "backfill_hours": backfill_hours, **settings},
              {"app_secret": TOP_SECRET, "session_key": TOP_SESSION})


def counts(db_url: str) -> dict[str, int]:
    with session_factory(db_url)() as db:
        def n(model: Any) -> int:
            return int(db.scalar(select(func.count()).select_from(model)) or 0)
        return {"events": n(models.EventRecord), "orders": n(models.Order), "refunds": n(models.Refund),
                "customers": n(models.Customer)}


def event_ids(db_url: str, source: str = SHOP) -> list[str]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord.external_id).where(models.EventRecord.source == source)
                               .order_by(models.EventRecord.external_id)))


def cursor(db_url: str, stream: str, connector_id: str = SHOP) -> datetime | None:
    return shop_sync.cursor_position(db_url, connector_id, stream)
