from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from temporalio import workflow

from engine.nodes.base import Context, NodeConfig, NodeType, WaitPlan
from engine.text import Msg
from engine.zones import known_zone


class WaitUntilConfig(NodeConfig):
    time: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time of day")
    weekdays: list[int] = Field(default_factory=list, description="1 = Monday … 7 = Sunday; empty = any day")
    date_attribute: str | None = Field(default=None, description="wait for this customer date (YYYY-MM-DD)")


def next_local_time(now: datetime, tz: str, at: str, weekdays: list[int], on: date | None = None) -> datetime:
    """The first moment at or after ``now`` that is ``at`` o'clock local time (on an allowed weekday
    or on the date ``on``). Pure; ``now`` must be timezone-aware. Returns UTC-aware time."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    hour, minute = (int(p) for p in at.split(":"))
    if on is not None:
        target = datetime(on.year, on.month, on.day, hour, minute, tzinfo=zone)
        return max(target, local_now).astimezone(now.tzinfo)
    day = local_now.date()
    for _ in range(8):
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if candidate >= local_now and (not weekdays or candidate.isoweekday() in weekdays):
            return candidate.astimezone(now.tzinfo)
        day += timedelta(days=1)
    raise ValueError(Msg("no allowed weekday"))  # unreachable: weekdays are validated to 1..7


class WaitUntil(NodeType):
    type = "wait.until"
    category = "wait"
    label = {"zh-CN": "等到某时", "en": "Wait until"}
    description = {"zh-CN": "等到当地某个时刻/星期/日期属性", "en": "Until a local time of day, weekday or date"}
    Config = WaitUntilConfig
    required_ports = ("out",)

    @classmethod
    def check(cls, config: Any) -> list[Any]:
        from engine.nodes.base import Problem

        bad = [d for d in config.weekdays if not 1 <= d <= 7]
        if bad:
            return [Problem(None, "weekdays", Msg("%(days)s are not weekdays", days=str(bad)),
                            Msg("use 1 (Monday) to 7 (Sunday)"))]
        return []

    @classmethod
    def wait_plan(cls, config: Any, ctx: Context, now: datetime, timezone: str) -> WaitPlan:
        own = ctx.customer.get("timezone")
        tz = str(own or timezone)
        if own and not known_zone(own) and workflow.patched("customer-zone-fallback-v1"):
            # a customer's zone stored unchecked by an older release: ZoneInfo raised here, so the journey's
            # task failed for ever; it goes by the flow's zone, as for a customer without one
            tz = timezone
        on = None
        if config.date_attribute:
            raw = ctx.customer.get(config.date_attribute)
            try:
                on = date.fromisoformat(str(raw)[:10]) if raw else None
            except ValueError:
                on = None
            if on is None:  # no such date on the customer: do not wait forever
                return WaitPlan(timeout=timedelta(0), timeout_port="out")
        target = next_local_time(now, tz, config.time, config.weekdays, on)
        return WaitPlan(timeout=max(target - now, timedelta(0)), timeout_port="out")
