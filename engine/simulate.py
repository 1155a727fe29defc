"""Preview (time travel): run a flow for one customer on Temporal's time-skipping test server.

The same interpreter and the same activities run as in production, against a
throw-away SQLite database, with every channel forced to dry-run. A script of
events ("order.paid on day 3") is delivered at simulated times; 30 days take
well under a second. What you preview is what runs. An event scripted after the
journey has ended (an order on day 4 after an unsubscribe on day 2) reaches
nobody, as in production: the timeline shows it as ``ignored`` at its time.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from engine.db.session import get_engine, transaction, upgrade
from engine.durations import parse_duration
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.temporal_bin import test_server_path
from engine.zones import check_zone


class ScriptedEvent(BaseModel):
    """An event in a preview script: ``at`` is an ISO duration from the start (``P3D``) or ``day 3``."""

    model_config = ConfigDict(extra="forbid")
    at: str = Field(examples=["P3D", "day 3", "PT2H"])
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _offset(cls, value: str) -> str:
        offset_of(value)
        return value


class PreviewCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "预览客户"
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


def offset_of(text: str) -> timedelta:
    """When a scripted event arrives: ``day 3``, ``day 3, 07:30`` (as the timeline prints it) or an ISO
    8601 duration from the start (``P3D``, ``PT2H``)."""
    match = re.fullmatch(r"\s*day\s+(\d{1,4})(?:\s*,?\s*([01]?\d|2[0-3]):([0-5]\d))?\s*", text, re.IGNORECASE)
    if match:
        day, hour, minute = match.groups()
        return timedelta(days=int(day), hours=int(hour or 0), minutes=int(minute or 0))
    if text.strip().upper() in ("P0D", "PT0S", "0"):
        return timedelta(0)
    return parse_duration(text)


async def preview(document: dict[str, Any], customer: PreviewCustomer | None = None,
                  script: list[ScriptedEvent] | None = None, days: int = 30) -> dict[str, Any]:
    """Run ``document`` for one customer for ``days`` simulated days; return status and timeline."""
    from engine import flows as flowsvc
    from engine.customers import resolve
    from engine.db import models
    from engine.worker import build_worker

    customer = customer or PreviewCustomer()
    events = sorted(script or [], key=lambda e: offset_of(e.at))
    with tempfile.TemporaryDirectory(prefix="tideflow-preview-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'preview.db'}"
        upgrade(url)
        with transaction(url) as db:
            flowsvc.save_draft(db, document, "preview")
            compiled = dict(flowsvc.publish(db, document["id"], "preview").compiled)
            cid = resolve(db, {"external_id": "preview"}, customer.name, customer.attributes)
            row = db.get(models.Customer, cid)
            assert row is not None
            row.timezone = customer.timezone
            for tag in customer.tags:
                db.add(models.CustomerTag(customer_id=cid, tag=tag))
        trigger = compiled["nodes"][compiled["trigger"]]
        entry: dict[str, Any] | None = None
        from engine.registry import entry_event_of

        entry_event = entry_event_of(trigger)
        if entry_event is not None:
            first = next((e for e in events if e.type == entry_event[0] and offset_of(e.at) ==
                          timedelta(0)), None)
            if first is not None:
                events.remove(first)
            entry = {"id": "preview:entry", "type": entry_event[0], "source": "preview",
                     "customer_id": cid, "payload": first.payload if first else {}}
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
        try:
            async with env, build_worker(env.client, "preview", url):
                start = await env.get_current_time()
                handle = await env.client.start_workflow(
                    JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid, entry_event=entry, simulate=True),
                    id=f"preview/{uuid.uuid4().hex[:8]}", task_queue="preview")
                elapsed = timedelta(0)
                ignored: list[dict[str, Any]] = []
                for i, evt in enumerate(events):
                    at = offset_of(evt.at)
                    if at > elapsed:
                        await env.sleep(at - elapsed)
                        elapsed = at
                    try:
                        await handle.signal("event", {"id": f"preview:{i}", "type": evt.type, "source": "preview",
                                                      "customer_id": cid, "payload": evt.payload})
                    except RPCError as exc:
                        if exc.status != RPCStatusCode.NOT_FOUND:
                            raise
                        # the journey had ended (an exit, its goal, the last node): the event reaches nobody
                        ignored.append({"at": (start + at).isoformat(), "what": "ignored", "node": None,
                                        "event": evt.type, "reason": "after_end"})
                horizon = timedelta(days=days)
                if horizon > elapsed:
                    await env.sleep(horizon - elapsed)
                description = await handle.describe()
                state: dict[str, Any] = await handle.query("state")
                finished = description.status is not None and description.status.name != "RUNNING"
                if finished:
                    try:
                        result = await handle.result()
                        status, timeline = result["status"], result["timeline"]
                    except WorkflowFailureError:  # a logic node that cannot be evaluated fails the workflow
                        status, timeline = "failed", state["timeline"]  # its last step says why
                else:
                    status, timeline = f"still {state['status']} at day {days}", state["timeline"]
                    await handle.terminate("preview horizon reached")
                timeline = sorted([*timeline, *ignored], key=lambda step: _parse(step["at"]))
                for entry_ in timeline:
                    offset = (_parse(entry_["at"]) - start).total_seconds()
                    entry_["offset_seconds"] = offset
                    entry_["day"] = round(offset / 86400, 3)
                with transaction(url) as db:
                    from sqlalchemy import select

                    messages = [{"node": m.node_id, "channel": m.channel, "content": m.content, "status": m.status}
                                for m in db.scalars(select(models.Message).order_by(models.Message.id))]
                return {"status": status, "timeline": timeline, "messages": messages, "days": days}
        finally:
            get_engine(url).dispose()


def day_and_clock(seconds: float) -> tuple[int, str]:
    """An offset from the start of a preview as a person reads it: (day, "HH:MM") — 7.31 days is
    (7, "07:26"). Whole minutes, rounded down: a step at 23:59:59 is still on its day."""
    day, minutes = divmod(int(seconds // 60), 1440)
    return day, f"{minutes // 60:02d}:{minutes % 60:02d}"


def day_label(seconds: float) -> str:
    """``day 7, 07:26``: how ``tideflow simulate`` (and the editor's English preview) shows an offset."""
    day, clock = day_and_clock(seconds)
    return f"day {day}, {clock}"


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)
