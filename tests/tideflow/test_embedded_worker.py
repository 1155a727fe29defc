"""The worker inside the web process (``TIDEFLOW_WORKER_IN_WEB``, what ``tideflow.stack.embedded_app`` builds):
one client for both, so journeys start eagerly — Temporal answers the start with the first workflow task — and
an event still starts its journey once, with the same messages and statistics as with a separate worker."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from designer.app import create_app
from engine import auth
from engine.db.session import transaction
from engine.settings import get_settings
from tests.designer.events_kit import Api, event, publish
from tests.engine.flowkit import WELCOME
from tideflow.stack import worker_running

pytestmark = pytest.mark.usefixtures("cheap_passwords")


async def test_events_start_journeys_eagerly_on_the_worker_in_the_web_process(
        dev_env: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_TASK_QUEUE", f"embedded-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", db_url)
    get_settings.cache_clear()
    with transaction(db_url) as db:
        token = auth.create_token(db, auth.create_user(db, "ops-bot", "a-long-password", "admin"), "test")
    client = dev_env.client
    eager: list[bool] = []
    start = client.start_workflow

    async def recording(*args: Any, **kwargs: Any) -> Any:  # what Temporal answered: did it start eagerly?
        handle = await start(*args, **kwargs)
        if kwargs.get("id", "").startswith("journey/"):
            eager.append(bool(getattr(handle, "__temporal_eagerly_started", False)))
        return handle

    monkeypatch.setattr(client, "start_workflow", recording)
    app = create_app(db_url, client=client, worker=worker_running)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as http:
        api = Api(http, db_url)
        assert app.state.router.eager
        await publish(api, WELCOME)
        first = await api.post("/api/events", event("e-1"), 202)
        assert first["started"] == [f"journey/welcome/{first['customer_id']}"]
        assert await api.messages_of(first["customer_id"], 1) == ["你好 张三"]
        # the same customer again: re-entry 'never', so the running journey gets the event instead
        other = await api.post("/api/events", event("e-2"), 202)
        assert other["started"] == [] and other["signalled"] == 1
        stats = await api.get("/api/flows/welcome/stats")
    assert eager == [True], "the journey was not started eagerly on the worker in this process"
    assert stats["nodes"]["start"]["entered"] == 1 and stats["nodes"]["hello"]["entered"] == 1
    get_settings.cache_clear()
