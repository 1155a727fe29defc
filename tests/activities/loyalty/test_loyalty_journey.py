"""Loyalty events reach journeys: an order that lifts a member to gold emits loyalty.tier_changed, the
re-router routes it, and the shipped 会员升级关怀 flow congratulates the member on real Temporal."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from activities.loyalty.program import ProgramConfig, TierSpec, save
from engine import events as ingest
from engine import flows as flowsvc
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.router import Router
from engine.worker import build_worker
from tests.waiting import until

FLOWS = Path(__file__).resolve().parents[3] / "flows"


async def test_an_upgrade_runs_the_tier_care_journey(time_env: Any, db_url: str) -> None:
    with transaction(db_url) as db:
        save(db, ProgramConfig(enabled=True, tiers=[TierSpec(key="member", name="会员", threshold=0),
                                      TierSpec(key="gold", name="金卡", threshold=50_000)]), "admin")
        cid = resolve(db, {"external_id": "vip"}, "林女士")
        flowsvc.save_draft(db, json.loads((FLOWS / "loyalty-tier-upgrade.json").read_text("utf-8")), "test")
        flowsvc.publish(db, "loyalty-tier-upgrade", "test")
    ingest.store(ingest.EventIn.model_validate({"id": "o1", "type": "order.paid", "customer": {"customer_id": cid},
                                                "payload": {"order_id": "o1", "amount_fen": 60_000},
                                                "occurred_at": datetime.now(UTC).isoformat()}), db_url)
    queue = f"loyalty-{uuid.uuid4().hex[:8]}"
    router = Router(time_env.client, db_url, queue)
    async with build_worker(time_env.client, queue, db_url):
        types = []
        for _row, payload in ingest.pending(db_url, older_than_seconds=0):
            await router.route(payload)
            ingest.mark_routed(payload["id"], db_url)
            types.append(payload["type"])
        assert sorted(types) == ["loyalty.points_earned", "loyalty.tier_changed", "order.paid"]

        def congrats() -> models.Message | None:
            with session_factory(db_url)() as db:
                return db.scalar(select(models.Message).where(models.Message.node_id == "congrats"))

        message = await until(congrats, "the tier care journey's congratulation message", timeout=20)
    assert message.customer_id == cid
    assert "林女士，恭喜升级为金卡" in message.content
