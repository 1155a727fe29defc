"""SLA maths for tickets: targets per priority, measured in business hours, with pauses.

Three clocks run on a ticket (each optional per priority):

- ``first_response`` — from creation until the first public reply by an agent;
- ``next_response`` — from each customer message that arrives after the first response until the
  next public reply (each such message opens a new *cycle*);
- ``resolution`` — from creation until the ticket is resolved.

Every clock has a *warning* checkpoint (``warn_before`` of business time before the deadline) and a
*breach* checkpoint. A checkpoint's key (``resolution:breach``, ``next_response#2:warning``) is what
makes it fire once: the ticket remembers the keys that fired, and a recomputation (the priority or
the status changed) never fires a remembered key again. While the ticket waits on the customer
(status ``pending``) the clocks are paused and have no deadline.

Pure: no I/O. The ticket workflow sleeps on durable timers until the next checkpoint; the
``ticket.sla_fire`` activity re-checks with these functions and applies the escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from activities.tickets.calendar import BusinessCalendar, Pause, business_time_used, deadline_with_pauses
from engine.durations import parse_duration

PRIORITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
METRICS: tuple[str, ...] = ("first_response", "next_response", "resolution")
Escalation = Literal["notify_supervisor", "raise_priority", "reassign"]


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class SlaTargets(BaseModel):
    """Business-time targets of one priority (ISO 8601 durations, e.g. ``PT4H``); null = no target."""

    model_config = ConfigDict(extra="forbid")
    first_response: str | None = Field(default=None, json_schema_extra={"format": "duration"})
    next_response: str | None = Field(default=None, json_schema_extra={"format": "duration"})
    resolution: str | None = Field(default=None, json_schema_extra={"format": "duration"})

    _check = field_validator("first_response", "next_response", "resolution")(_duration)


class SlaPolicy(BaseModel):
    """Targets per priority, the warning lead time and what happens on a breach."""

    model_config = ConfigDict(extra="forbid")
    targets: dict[Literal["P1", "P2", "P3", "P4"], SlaTargets] = Field(
        description="per priority, e.g. {'P2': {'first_response': 'PT1H', 'resolution': 'PT4H'}}")
    warn_before: str | None = Field(default="PT30M", description="warn this much business time before a breach",
                                    json_schema_extra={"format": "duration"})
    escalation: list[Escalation] = Field(
        default_factory=lambda: list[Escalation](["notify_supervisor"]),
        description="on breach, in order: notify the group's supervisor, raise the priority one level, reassign")

    _check = field_validator("warn_before")(_duration)


@dataclass(frozen=True)
class Clocks:
    """When a ticket's SLA clocks started and stopped (all timezone-aware)."""

    started_at: datetime
    pauses: Sequence[Pause] = ()
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    #: the customer wrote after the first response and has had no reply yet
    awaiting_reply_since: datetime | None = None
    reply_cycle: int = 0


@dataclass(frozen=True)
class Checkpoint:
    key: str
    metric: str
    stage: Literal["warning", "breach"]
    #: None while a pause stops the clock
    due: datetime | None


@dataclass
class SlaState:
    """What a ticket keeps in its ``sla`` column."""

    policy: dict[str, Any] | None = None
    calendar: dict[str, Any] = field(default_factory=dict)
    pauses: list[list[str | None]] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    awaiting_reply_since: str | None = None
    reply_cycle: int = 0

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> SlaState:
        data = dict(data or {})
        return cls(policy=data.get("policy"), calendar=dict(data.get("calendar") or {}),
                   pauses=[list(p) for p in data.get("pauses") or []], fired=list(data.get("fired") or []),
                   awaiting_reply_since=data.get("awaiting_reply_since"), reply_cycle=int(data.get("reply_cycle", 0)))

    def dump(self) -> dict[str, Any]:
        return {"policy": self.policy, "calendar": self.calendar, "pauses": self.pauses, "fired": self.fired,
                "awaiting_reply_since": self.awaiting_reply_since, "reply_cycle": self.reply_cycle}

    def pause_list(self) -> list[Pause]:
        return [(datetime.fromisoformat(str(s)), datetime.fromisoformat(e) if e else None) for s, e in self.pauses]

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def pause(self, now: datetime) -> None:
        """The ticket waits on the customer: stop the clocks (no-op when already paused)."""
        if not self.paused:
            self.pauses.append([now.isoformat(), None])

    def resume(self, now: datetime) -> None:
        if self.paused:
            self.pauses[-1][1] = now.isoformat()

    def customer_wrote(self, now: datetime) -> None:
        """A customer message after the first response opens a next-response cycle."""
        if self.awaiting_reply_since is None:
            self.awaiting_reply_since = now.isoformat()
            self.reply_cycle += 1

    def agent_replied(self) -> None:
        self.awaiting_reply_since = None


def calendar_of(data: dict[str, Any] | None) -> BusinessCalendar:
    """A business calendar from its JSON form; empty = Monday–Friday 09:00–18:00 Asia/Shanghai."""
    return BusinessCalendar.model_validate(data or {})


def checkpoints(policy: SlaPolicy, calendar: BusinessCalendar, priority: str, clocks: Clocks) -> list[Checkpoint]:
    """Every warning and breach checkpoint of the clocks still running, in due order (paused last)."""
    targets = policy.targets.get(priority)  # type: ignore[call-overload]
    if targets is None:
        return []
    warn = parse_duration(policy.warn_before) if policy.warn_before else None
    running: list[tuple[str, str, datetime]] = []
    if clocks.resolved_at is None:
        if clocks.first_response_at is None and targets.first_response:
            running.append(("first_response", targets.first_response, clocks.started_at))
        if clocks.awaiting_reply_since is not None and targets.next_response:
            running.append((f"next_response#{clocks.reply_cycle}", targets.next_response, clocks.awaiting_reply_since))
        if targets.resolution:
            running.append(("resolution", targets.resolution, clocks.started_at))
    out: list[Checkpoint] = []
    for name, target_text, start in running:
        target = parse_duration(target_text)
        metric = name.split("#", 1)[0]
        if warn is not None and timedelta(0) < warn < target:
            due = deadline_with_pauses(calendar, start, target - warn, clocks.pauses)
            out.append(Checkpoint(f"{name}:warning", metric, "warning", due))
        out.append(Checkpoint(f"{name}:breach", metric, "breach",
                              deadline_with_pauses(calendar, start, target, clocks.pauses)))
    far = datetime.max.replace(tzinfo=clocks.started_at.tzinfo)
    return sorted(out, key=lambda c: (c.due or far, c.key))


def pending(points: Sequence[Checkpoint], fired: Sequence[str]) -> list[Checkpoint]:
    """Checkpoints that have not fired and have a deadline (paused clocks have none)."""
    done = set(fired)
    return [c for c in points if c.key not in done and c.due is not None]


def due_now(points: Sequence[Checkpoint], fired: Sequence[str], now: datetime) -> list[Checkpoint]:
    return [c for c in pending(points, fired) if c.due is not None and c.due <= now]


def raised(priority: str) -> str:
    """One level more urgent (P4 → P3 … P1 stays P1)."""
    index = PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES) - 1
    return PRIORITIES[max(0, index - 1)]


def used(calendar: BusinessCalendar, clocks: Clocks, now: datetime) -> timedelta:
    """Business time on the resolution clock so far (for the console)."""
    return business_time_used(calendar, clocks.started_at, now, clocks.pauses)
