"""Time zone names (engine.zones): one check at every way in, and a stored name that is no zone — kept by an
older release, which took a customer's ``profile.timezone`` on an event unchecked — stops nothing that reads
it: the quiet-hours gate, a broadcast page, a ``wait.until``. Each goes by the flow's zone instead."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from engine.broadcast import date_matches
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.events import EventIn
from engine.nodes.wait_until import next_local_time
from engine.policies import gate, gate_many
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.simulate import PreviewCustomer
from engine.worker import build_worker
from engine.zones import MAX_ZONE_NAME, check_zone, known_zone, zone_or
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import record

#: names that are no zone, each refused by a different path inside ``ZoneInfo``: unknown, malformed, a path
#: outside the zone database, a NUL byte, and longer than a file name may be (``OSError``, which no caller
#: caught before)
NOT_ZONES = ["Mars/Olympus", "asia/shanghai", "UTC ", "", "Asia/", "../../etc/passwd", "/etc/localtime",
             "Asia\x00Shanghai", "a" * 300, "Asia/" + "x" * 5000]


@pytest.mark.parametrize("name", NOT_ZONES)
def test_a_name_that_is_no_zone_is_refused_without_an_exception(name: str) -> None:
    assert not known_zone(name)
    with pytest.raises(ValueError, match="is not an IANA time zone such as 'Asia/Shanghai'") as refused:
        check_zone(name)
    assert len(str(refused.value)) < 200, "a huge name is clipped in the message"


def test_zones_and_the_fallback() -> None:
    assert known_zone("Asia/Shanghai") and known_zone("UTC") and known_zone("America/Argentina/ComodRivadavia")
    assert not known_zone(None) and not known_zone(8) and not known_zone("x" * (MAX_ZONE_NAME + 1))
    assert zone_or("Europe/Berlin", "Asia/Shanghai") == "Europe/Berlin"
    assert zone_or("Mars/Olympus", "Asia/Shanghai") == zone_or(None, "Asia/Shanghai") == "Asia/Shanghai"


@pytest.mark.parametrize("name", ["Mars/Olympus", "a" * 300, "../../etc/passwd"])
def test_an_event_whose_profile_names_no_zone_is_refused_naming_the_field(name: str) -> None:
    body = {"id": "e-1", "type": "order.paid", "customer": {"external_id": "c-1"}, "profile": {"timezone": name}}
    with pytest.raises(ValidationError) as refused:
        EventIn.model_validate(body)
    error = refused.value.errors()[0]
    assert error["loc"] == ("profile", "timezone") and "Asia/Shanghai" in error["msg"]
    assert EventIn.model_validate({**body, "profile": {"timezone": "Asia/Tokyo"}}).profile is not None
    with pytest.raises(ValidationError, match="IANA"):
        PreviewCustomer.model_validate({"timezone": name})


def _poisoned(db_url: str, zone: str = "Mars/Olympus") -> str:
    """A customer whose stored zone is no zone, as an older release could keep it."""
    cid = customer(db_url, "赵六", birthday="1990-11-23")
    with transaction(db_url) as db:
        row = db.get(models.Customer, cid)
        assert row is not None
        row.timezone, row.consent = zone, {"wecom": "opted_in"}
    return cid


def test_the_quiet_hours_gate_reads_a_stored_non_zone_as_the_flows_zone(db_url: str) -> None:
    poisoned, fine = _poisoned(db_url), _poisoned(db_url, "Asia/Shanghai")
    settings = {"timezone": "Asia/Shanghai", "quiet_hours": {"start": "21:00", "end": "09:00"}}
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    with transaction(db_url) as db:
        one = gate(db, poisoned, "wecom", "promotional", settings, night, None)
        page = gate_many(db, [poisoned, fine], "wecom", "promotional", settings, night, None)
    morning = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert one.outcome == "deferred: quiet hours" and one.until == morning
    assert {cid: (d.outcome, d.until) for cid, d in page.items()} == {
        poisoned: ("deferred: quiet hours", morning), fine: ("deferred: quiet hours", morning)}


def test_a_date_broadcast_reads_a_stored_non_zone_as_the_flows_zone() -> None:
    config = {"attribute": "birthday", "offset_days": 0, "yearly": True}
    flow_ = {"settings": {"timezone": "Asia/Shanghai"}}
    for zone in NOT_ZONES:
        assert date_matches({"birthday": "1990-11-23", "timezone": zone}, config, flow_, date(2026, 11, 23))
        assert not date_matches({"birthday": "1990-11-24", "timezone": zone}, config, flow_, date(2026, 11, 23))


#: waits until 10:00 local time, then tags: the customer's zone if it is one, else the flow's
MORNING = flow("morning-tag", [
    ("start", "trigger.api", {}),
    ("wait", "wait.until", {"time": "10:00"}),
    ("tag", "action.tag", {"add": ["morning"]})],
    [("start", "out", "wait"), ("wait", "out", "tag")], timezone="Asia/Shanghai")


async def test_a_wait_until_goes_by_the_flows_zone_when_the_customers_is_none(time_env: Any, db_url: str) -> None:
    """Before, ``ZoneInfo`` raised inside the workflow task: the journey neither waited nor failed, its task
    retried for ever. Now it waits until 10:00 in the flow's zone (``workflow.patched``: the fallback is taken
    only where the old code raised, so no recorded run changes). Its history is kept for the replay test
    (tests/engine/test_replay.py), which the code before fails."""
    compiled = publish(db_url, MORNING)
    cid = _poisoned(db_url)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        started = await time_env.get_current_time()
        handle = await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid), id=f"journey/morning-tag/{cid}",
            task_queue=queue)
        # the code before never ended it (its first task failed for ever): a minute then fails the test
        result = await asyncio.wait_for(handle.result(), 60)
        ended = await time_env.get_current_time()
        await record(handle, "wait_until_customer_zone_fallback")
    assert result["status"] == "completed"
    assert [s["what"] for s in result["timeline"]][-1] != "failed"
    assert ended >= next_local_time(started, "Asia/Shanghai", "10:00", []), "it waited for 10:00 in Shanghai"
    with session_factory(db_url)() as db:
        tags = [t.tag for t in db.query(models.CustomerTag).filter_by(customer_id=cid)]
    assert tags == ["morning"]

