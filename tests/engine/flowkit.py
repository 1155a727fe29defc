"""Small builders for flows in tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from engine import flows as flowsvc
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction


def flow(flow_id: str, nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str, str]],
         **settings: Any) -> dict[str, Any]:
    """nodes: (id, type, config); edges: (from, port, to)."""
    return {
        "schema": "tideflow/flow@1", "id": flow_id, "name": flow_id, "kind": "journey", "settings": settings,
        "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
        "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges],
    }


WELCOME = flow(
    "welcome",
    [("start", "trigger.event", {"event": "wecom.contact_added"}),
     ("hello", "action.send_message", {"template": "你好 {{ customer.name }}"}),
     ("wait1", "wait.delay", {"duration": "P1D"}),
     ("bought", "logic.condition", {"expr": "customer.orders_count > 0"}),
     ("tag", "action.tag", {"add": ["尝鲜客"]}),
     ("coupon", "action.send_message", {"template": "送你一张券"}),
     ("waitorder", "wait.event", {"event": "order.paid", "timeout": "P7D"}),
     ("thanks", "action.send_message", {"template": "谢谢惠顾"})],
    [("start", "out", "hello"), ("hello", "out", "wait1"), ("wait1", "out", "bought"), ("bought", "yes", "tag"),
     ("bought", "no", "coupon"), ("coupon", "out", "waitorder"), ("waitorder", "event", "thanks")],
    exit_on=[{"event": "customer.unsubscribed"}],
)


def publish(db_url: str, document: dict[str, Any]) -> dict[str, Any]:
    """Save and publish a flow document; the compiled version."""
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, "test")
        return dict(flowsvc.publish(db, document["id"], "test").compiled)


def customer(db_url: str, name: str = "张三", **attributes: Any) -> str:
    """A new customer with these attributes."""
    with transaction(db_url) as db:
        return resolve(db, {"external_id": uuid.uuid4().hex}, name, attributes)


def messages(db_url: str, customer_id: str) -> list[str]:
    """The texts of the messages recorded for a customer, oldest first."""
    with session_factory(db_url)() as db:
        return [m.content for m in db.scalars(select(models.Message).where(models.Message.customer_id == customer_id)
                                              .order_by(models.Message.id))]
