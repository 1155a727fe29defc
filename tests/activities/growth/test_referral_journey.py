"""The shipped 老带新 flow on real Temporal (time-skipping) with the loopback WeCom: three friends add
through a participant's code, the follow-up ``referral.progress`` events are routed like any event,
the inviter hears "还差 N 位好友" and gets exactly one coupon when the third friend counts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import events as ingest
from engine.db import models
from engine.db.session import session_factory
from engine.router import Router
from engine.worker import build_worker
from tests.activities.growth.growth_kit import connect_wecom, deliver, three_friends_campaign
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.waiting import until

__all__ = ["fake_wecom"]


async def route_pending(router: Router, db_url: str) -> list[str]:
    """What the web app's re-router does: route every stored event not yet routed."""
    routed = []
    for _row, payload in ingest.pending(db_url, older_than_seconds=0):
        await router.route(payload)
        ingest.mark_routed(payload["id"], db_url)
        routed.append(payload["type"] + ":" + str((payload["payload"] or {}).get("change", "")))
    return routed


async def test_three_friends_unlock_one_coupon_with_progress_messages(time_env: Any, db_url: str,
                                                                      fake_wecom: FakeWeCom,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    inviter, code = three_friends_campaign(db_url, fake_wecom)
    queue = f"referral-{uuid.uuid4().hex[:8]}"
    router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url):
        for i in range(3):
            xml = fake_wecom.scan_and_add(str(code.config_id), f"wmFRIEND{i}", name=f"朋友{i}")[0]
            deliver(db_url, xml)
        deliver(db_url, xml)  # WeCom redelivers the third add: stored once, counted once
        routed = await route_pending(router, db_url)
        assert sorted(r for r in routed if r.startswith("referral")) == [
            "referral.progress:counted"] * 3 + ["referral.progress:goal_reached"]

        def texts() -> list[str]:
            return [t for (ext, how, t, _) in fake_wecom.delivered if ext == "wmINVITER" and how.startswith("task")]

        await until(lambda: len(texts()) >= 3 and texts(), "three task messages to the inviter")
    reminders = sorted(t for t in texts() if "还差" in t)
    assert reminders == ["老王，又有一位好友通过你的海报加入啦！还差 1 位好友就能领取 30 元券～",
                         "老王，又有一位好友通过你的海报加入啦！还差 2 位好友就能领取 30 元券～"]
    with session_factory(db_url)() as db:
        coupons = list(db.scalars(select(models.Coupon).where(models.Coupon.customer_id == inviter)))
        issued = db.scalar(select(func.count()).select_from(models.AuditEntry).where(
            models.AuditEntry.action == "referral.reward_issued"))
    assert len(coupons) == 1 and issued == 1
    assert any(coupons[0].code in t for t in texts())
