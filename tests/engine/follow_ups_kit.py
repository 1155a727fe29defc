"""For tests of follow-up events routed at once (engine/follow_ups.py): count the routings, switch the re-router off."""

from __future__ import annotations

import collections
import uuid
from typing import Any

import pytest

from engine.router import Router, RouteResult
from engine.settings import get_settings


@pytest.fixture
def routings(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """How often each event was routed (Router.route_event calls, any router of this process), and the
    journeys each routing started (``started:<event>``) and signalled (``signalled:<event>``)."""
    seen: collections.Counter[str] = collections.Counter()
    route_event = Router.route_event

    async def counting(self: Router, event: dict[str, Any], remember: bool = False) -> RouteResult:
        seen[event["id"]] += 1
        result = await route_event(self, event, remember)
        seen[f"started:{event['id']}"] += len(result.started)
        seen[f"signalled:{event['id']}"] += result.signalled
        return result

    monkeypatch.setattr(Router, "route_event", counting)
    return seen


def worker_settings(monkeypatch: pytest.MonkeyPatch, db_url: str) -> str:
    queue = f"follow-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", queue)
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("TIDEFLOW_REROUTE_EVERY_SECONDS", "3600")  # the re-router (web processes) is off
    get_settings.cache_clear()
    return queue
