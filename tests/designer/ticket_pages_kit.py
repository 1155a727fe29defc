"""The ticket console pages from a test: the designer app with agents, groups and an SLA policy, and tickets
made directly in the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from activities.tickets import service
from engine import auth
from engine.customers import resolve
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.designer.pages_kit import PASSWORD, add_users, build_app

ALWAYS = {"timezone": "Asia/Shanghai", "working_days": [1, 2, 3, 4, 5, 6, 7],
          "working_hours": [{"start": "00:00", "end": "24:00"}]}


POLICY = {"targets": {"P2": {"first_response": "PT1H", "resolution": "PT4H"},
                      "P3": {"first_response": "PT2H", "resolution": "PT8H"}},
          "warn_before": "PT30M", "escalation": ["notify_supervisor"]}


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    """Users of every role (named after it) plus ``bob``, an agent of group beta; ``agent`` works alpha,
    whose supervisor is ``ops``."""
    add_users(db_url)
    with transaction(db_url) as db:
        bob = auth.create_user(db, "bob", PASSWORD, "agent", "Bob 坐席")
        ids = {u.username: u.id for u in db.scalars(select(models.User))}
        db.add(models.AgentGroup(key="alpha", name="A 组", strategy="least_loaded", supervisor_id=ids["ops"],
                                 calendar=ALWAYS, capacity=3, notify_channel="dry-run", rr_last=0))
        db.add(models.AgentGroup(key="beta", name="B 组", strategy="round_robin", calendar=ALWAYS, capacity=5,
                                 notify_channel="dry-run", rr_last=0))
        db.flush()
        db.add(models.Agent(user_id=ids["agent"], groups=["alpha"], skills=[], capacity=None, availability="online",
                            working_hours={}, contact={}))
        db.add(models.Agent(user_id=bob.id, groups=["beta"], skills=[], capacity=None, availability="online",
                            working_hours={}, contact={}))
        db.add(models.TicketType(key="complaint", name="投诉", default_group="alpha", default_priority="P3",
                                 fields=[{"key": "category", "label": "分类", "type": "choice",
                                          "choices": ["物流", "质量"]}],
                                 auto_events=[]))
    return build_app(db_url)


def make(db_url: str, subject: str = "快递破损", group: str = "alpha", assignee: str | None = None,
         customer: bool = False, policy: bool = False, age: timedelta = timedelta(0), replied: bool = False,
         **extra: Any) -> int:
    """A ticket (no workflow), optionally assigned, with a customer and an SLA on a 24/7 calendar."""
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13900000001", "youzan_buyer": "yz-77"}, "王芳", {"vip_level": 3}) \
            if customer else None
        created = utcnow() - age
        ticket, _ = service.create_ticket(db, type_key="complaint", subject=subject, group=group, now=created,
                                          customer_id=cid, channel="dry-run", **extra)
        ticket.workflow_id = ""
        if assignee:
            ticket.assignee_id = db.scalar(select(models.User.id).where(models.User.username == assignee))
        if policy:
            service.start_sla(db, ticket, POLICY, created)
        if replied:  # only the resolution clock runs
            ticket.first_response_at = created
        return ticket.id
