"""Pure SLA maths: checkpoints per priority in business time, pauses, next-response cycles,
fired keys never firing again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.tickets import sla

SH = ZoneInfo("Asia/Shanghai")
CAL = sla.calendar_of({"holidays": ["2026-11-30"]})  # Mon–Fri 09–18, Monday 30 Nov off
POLICY = sla.SlaPolicy.model_validate({
    "targets": {"P3": {"first_response": "PT1H", "next_response": "PT2H", "resolution": "PT4H"},
                "P1": {"resolution": "PT1H"}},
    "warn_before": "PT30M"})


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


def due(points: list[sla.Checkpoint]) -> dict[str, datetime | None]:
    return {p.key: p.due for p in points}


def test_deadlines_skip_the_weekend_and_the_holiday() -> None:
    # Friday 27 Nov 17:00: 1 h today, then Saturday, Sunday and the holiday Monday are skipped
    points = due(sla.checkpoints(POLICY, CAL, "P3", sla.Clocks(started_at=at(27, 17))))
    assert points["first_response:warning"] == at(27, 17, 30)
    assert points["first_response:breach"] == at(27, 18)
    assert points["resolution:warning"] == datetime(2026, 12, 1, 11, 30, tzinfo=SH)
    assert points["resolution:breach"] == datetime(2026, 12, 1, 12, 0, tzinfo=SH)


def test_a_pause_stops_the_clock_and_an_open_pause_has_no_deadline() -> None:
    start = at(24, 9)
    paused = sla.Clocks(started_at=start, first_response_at=at(24, 9, 10), pauses=[(at(24, 10), None)])
    assert all(p.due is None for p in sla.checkpoints(POLICY, CAL, "P3", paused))
    resumed = sla.Clocks(started_at=start, first_response_at=at(24, 9, 10), pauses=[(at(24, 10), at(25, 10))])
    assert due(sla.checkpoints(POLICY, CAL, "P3", resumed))["resolution:breach"] == at(25, 13)


def test_next_response_cycles_and_fired_keys() -> None:
    state = sla.SlaState()
    state.customer_wrote(at(24, 10))
    state.customer_wrote(at(24, 11))  # still unanswered: the same cycle
    assert state.reply_cycle == 1
    clocks = sla.Clocks(started_at=at(24, 9), first_response_at=at(24, 9, 30),
                        awaiting_reply_since=at(24, 10), reply_cycle=1)
    points = sla.checkpoints(POLICY, CAL, "P3", clocks)
    assert due(points)["next_response#1:breach"] == at(24, 12)
    fired = ["next_response#1:warning"]
    assert [p.key for p in sla.due_now(points, fired, at(24, 12))] == ["next_response#1:breach"]
    state.agent_replied()
    state.customer_wrote(at(24, 14))
    assert state.reply_cycle == 2


def test_priority_targets_and_resolution_stop_the_clocks() -> None:
    clocks = sla.Clocks(started_at=at(24, 9))
    assert [p.key for p in sla.checkpoints(POLICY, CAL, "P1", clocks)] == ["resolution:warning", "resolution:breach"]
    assert sla.checkpoints(POLICY, CAL, "P4", clocks) == []
    done = sla.Clocks(started_at=at(24, 9), resolved_at=at(24, 10))
    assert sla.checkpoints(POLICY, CAL, "P3", done) == []
    assert [sla.raised(p) for p in ("P4", "P3", "P2", "P1")] == ["P3", "P2", "P1", "P1"]


def test_state_round_trips_and_pauses_once() -> None:
    state = sla.SlaState.load({"policy": POLICY.model_dump(), "fired": ["x"]})
    state.pause(at(24, 10))
    state.pause(at(24, 11))
    assert state.paused and len(state.pauses) == 1
    state.resume(at(24, 12))
    assert sla.SlaState.load(state.dump()).pause_list() == [(at(24, 10), at(24, 12))]
    assert sla.used(CAL, sla.Clocks(started_at=at(24, 9), pauses=state.pause_list()), at(24, 13)) == timedelta(hours=2)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValidationError):
        sla.SlaPolicy.model_validate({"targets": {"P3": {"resolution": "four hours"}}})
    with pytest.raises(ValidationError):
        sla.SlaPolicy.model_validate({"targets": {"P9": {}}})
