"""``tideflow events send`` routes through the routing pipeline like the web app: each event claimed when it is
stored, so a re-router looking at the same moment leaves it alone and it is routed once (real Temporal:
the time-skipping test server; a real SQLite file)."""

from __future__ import annotations

import collections
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import flows as flowsvc
from engine import payload_codec
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.flow_templates import FLOWS_DIR
from engine.pipeline import RoutingPipeline
from engine.router import Router, RouteResult
from engine.settings import get_settings
from tests.dbtemplate import migrated_sqlite
from tideflow.cli import _send_events

WELCOME = FLOWS_DIR / "welcome-new-contact.json"


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    url, queue = f"sqlite:///{tmp_path / 'cli.db'}", f"cli-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", url)
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    get_settings.cache_clear()
    migrated_sqlite(url)
    with transaction(url) as db:
        flowsvc.save_draft(db, json.loads(WELCOME.read_text("utf-8")), "test")
        flowsvc.publish(db, "welcome-new-contact", "test")
    return url, queue


async def test_events_send_and_a_racing_re_router_route_the_event_once(
        time_env: Any, cli_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    url, queue = cli_db

    async def connect(settings: Any) -> Any:
        return time_env.client

    monkeypatch.setattr(payload_codec, "connect", connect)
    rerouter = RoutingPipeline(url, Router(time_env.client, url, queue))  # another process's re-router
    rerouter.start()
    routings: collections.Counter[str] = collections.Counter()
    raced: list[bool] = []
    route_event = Router.route_event

    async def racing(self: Router, event: dict[str, Any], remember: bool = False) -> RouteResult:
        routings[event["id"]] += 1
        if not raced:  # the re-router looks (at any age) just as the CLI routes the stored event
            raced.append(True)
            await rerouter.reroute_once(older_than_seconds=0)
        return await route_event(self, event, remember)

    monkeypatch.setattr(Router, "route_event", racing)
    try:
        [answer] = await _send_events([{"id": "c1", "type": "wecom.contact_added",
                                        "customer": {"phone": "13800138000"}}])
        await rerouter.reroute_once(older_than_seconds=0)  # and once more when the CLI is done
    finally:
        await rerouter.stop()
    assert raced
    assert routings["api:c1"] == 1, f"routed {routings['api:c1']} times"
    assert answer["status"] == "accepted" and answer["routing"] == "done" and len(answer["started"]) == 1
    with session_factory(url)() as db:
        journeys = db.scalars(select(models.Journey).where(models.Journey.flow_id == "welcome-new-contact")).all()
        event = db.scalar(select(models.EventRecord).where(models.EventRecord.external_id == "c1"))
    assert len(journeys) == 1
    assert event is not None and event.status == "routed" and event.claimed_until is None


async def test_events_send_without_temporal_leaves_the_events_unclaimed_for_the_re_router(
        cli_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = cli_db

    async def unreachable(settings: Any) -> Any:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(payload_codec, "connect", unreachable)
    [answer] = await _send_events([{"id": "c2", "type": "wecom.contact_added", "customer": {"phone": "13800138001"}}])
    assert answer["status"] == "accepted" and answer["routing"] == "pending"
    with session_factory(url)() as db:
        event = db.scalar(select(models.EventRecord).where(models.EventRecord.external_id == "c2"))
    assert event is not None and event.status == "received" and event.claimed_until is None
