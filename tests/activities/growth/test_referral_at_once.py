"""A referral goal reached starts the reward journey as soon as the third friend's add commits
(engine/follow_ups.py), with the re-router off: the growth hook stores the ``referral.progress`` events in
the add's transaction, the web process's pipeline routes them on commit, and the shipped 老带新 flow issues
the inviter's one coupon. Real Temporal (time-skipping), the loopback WeCom, SQLite."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from sqlalchemy import select

from engine.db import models
from engine.db.session import session_factory
from engine.settings import get_settings
from engine.worker import build_worker
from tests.activities.growth.growth_kit import connect_wecom, deliver, three_friends_campaign
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.engine.follow_ups_kit import routings, worker_settings
from tests.waiting import until

__all__ = ["fake_wecom", "routings"]


async def test_the_third_friend_starts_the_reward_journey_at_once(
        time_env: Any, db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch,
        routings: collections.Counter[str]) -> None:
    from designer.app import create_app

    connect_wecom(db_url, fake_wecom, monkeypatch)
    queue = worker_settings(monkeypatch, db_url)  # the re-router is off
    inviter, code = three_friends_campaign(db_url, fake_wecom)

    def coupons() -> list[models.Coupon]:
        with session_factory(db_url)() as db:
            return list(db.scalars(select(models.Coupon).where(models.Coupon.customer_id == inviter)))

    app = create_app(db_url, client=time_env.client)
    async with build_worker(time_env.client, queue, db_url), app.router.lifespan_context(app):
        for i in range(3):  # the adds are stored by this (web) process, as its /hooks endpoint would
            deliver(db_url, fake_wecom.scan_and_add(str(code.config_id), f"wmFRIEND{i}", name=f"朋友{i}")[0])
        rewarded = await until(coupons, "the reward journey's coupon (referral.progress must not wait for the "
                                        "re-router, which is off)", timeout=30, interval=0.02)
    assert len(rewarded) == 1
    with session_factory(db_url)() as db:
        goal = db.scalar(select(models.EventRecord).where(models.EventRecord.type == "referral.progress",
                                                          models.EventRecord.external_id.like("%:goal")))
    assert goal is not None and goal.status == "routed"
    ref = f"{goal.source}:{goal.external_id}"
    assert routings[ref] == 1 and routings[f"started:{ref}"] == 1
    get_settings.cache_clear()
