"""Setting up the JD connector against the fake JOS gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.connectors.shop_platforms import (
    JOS_APP_KEY,
    JOS_SECRET,
    JOS_TOKEN,
    FakeJos,
)
from tests.connectors.taobao_sync_kit import configure

NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
SHOP = "jd-pop"


@pytest.fixture
def jos() -> Iterator[FakeJos]:
    with FakeJos() as server:
        yield server  # type: ignore[misc]


def configure_jd(db_url: str, jos: FakeJos, **settings: object) -> None:
    configure(db_url, SHOP, "jd", {"app_key": JOS_APP_KEY, "shop": SHOP, "gateway_url": jos.url,
                                   "backfill_hours": 1, **settings},
              {"app_secret": JOS_SECRET, "access_token": JOS_TOKEN})
