"""action.issue_coupon in a real journey on Temporal's time-skipping server."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from engine import flows as flowsvc
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.activities.coupons.coupon_kit import make_campaign, make_customer
from tests.engine.flowkit import flow

COUPON_FLOW = flow(
    "coupon-welcome",
    [("start", "trigger.api", {}),
     ("coupon", "action.issue_coupon", {"campaign": "welcome-20"}),
     ("tell", "action.send_message", {"template": "券码 {{ vars.coupon_code }}", "category": "transactional"}),
     ("sorry", "action.send_message", {"template": "券已领完", "category": "transactional"})],
    [("start", "out", "coupon"), ("coupon", "out", "tell"), ("coupon", "out_of_stock", "sorry")],
)


def publish(db_url: str, document: dict[str, Any]) -> dict[str, Any]:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, "test")
        return dict(flowsvc.publish(db, document["id"], "test").compiled)


def messages(db_url: str, customer_id: str) -> list[str]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Message.content).where(models.Message.customer_id == customer_id)
                               .order_by(models.Message.id)))


async def test_journey_issues_then_runs_out_of_stock(time_env: Any, db_url: str) -> None:
    make_campaign(db_url, total_stock=1, validity_days=7)
    compiled = publish(db_url, COUPON_FLOW)
    first, second = make_customer(db_url), make_customer(db_url, "李四")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    results = []
    async with build_worker(time_env.client, queue, db_url):
        for cid in (first, second):
            results.append(await time_env.client.execute_workflow(
                JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid),
                id=f"journey/coupon-welcome/{cid}", task_queue=queue))
    with session_factory(db_url)() as db:
        coupons = list(db.scalars(select(models.Coupon)))
        campaign = db.get(models.CouponCampaign, "welcome-20")
    assert len(coupons) == 1 and campaign is not None and campaign.issued_count == 1
    coupon = coupons[0]
    assert coupon.customer_id == first and coupon.idempotency_key == f"journey/coupon-welcome/{first}/coupon/1"
    assert results[0]["status"] == "completed"
    assert results[0]["variables"]["coupon_code"] == coupon.code
    assert results[0]["variables"]["coupon_value_fen"] == 2000
    assert results[0]["variables"]["coupon_expires_at"] == coupon.expires_at.isoformat()  # type: ignore[union-attr]
    assert messages(db_url, first) == [f"券码 {coupon.code}"]
    ports = [(s["node"], s.get("port")) for s in results[1]["timeline"] if s["what"] == "step"]
    assert ("coupon", "out_of_stock") in ports
    assert "coupon_code" not in results[1]["variables"]
    assert messages(db_url, second) == ["券已领完"]


async def test_a_lost_completion_is_retried_without_a_second_coupon(time_env: Any, db_url: str,
                                                                    monkeypatch: Any) -> None:
    """The first attempt commits its coupon but its completion is lost (the worker died): the retry
    finds the recorded result under the same key and issues nothing new."""
    from engine import actions

    real_perform = actions.perform
    lost: list[str] = []

    def perform_then_crash(node_type: Any, request: Any, services: Any) -> dict[str, Any]:
        result = real_perform(node_type, request, services)
        if node_type.type == "action.issue_coupon" and not lost:
            lost.append(request.key)
            raise RuntimeError("worker crashed before reporting the result")
        return result

    monkeypatch.setattr(actions, "perform", perform_then_crash)
    make_campaign(db_url, total_stock=5, per_customer_limit=5)
    compiled = publish(db_url, COUPON_FLOW)
    cid = make_customer(db_url)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        result = await time_env.client.execute_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid),
            id=f"journey/coupon-welcome/{cid}", task_queue=queue)
    assert lost == [f"journey/coupon-welcome/{cid}/coupon/1"]
    with session_factory(db_url)() as db:
        coupons = list(db.scalars(select(models.Coupon)))
        campaign = db.get(models.CouponCampaign, "welcome-20")
    assert len(coupons) == 1 and campaign is not None and campaign.issued_count == 1
    assert result["variables"]["coupon_code"] == coupons[0].code
    assert messages(db_url, cid) == [f"券码 {coupons[0].code}"]
