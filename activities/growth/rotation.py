"""Which staff members a channel code offers right now: schedules, daily caps, rotation. Pure: no I/O.

WeCom's multi-person contact way (type 2) hands each new customer to one of its ``user`` list; it
has no schedules and no caps. Tideflow keeps the list current instead: whenever the wanted list
differs from what the contact way has, it calls ``update_contact_way`` (activities/growth/channels.py).

* **schedule** — entries ``{"days": [1..7], "start": "09:00", "end": "18:00", "users": [...]}`` (ISO
  weekdays, local time of the code's timezone; an entry whose end is before its start runs over
  midnight). The users of every entry that covers now answer; when none covers now, the code's own
  ``staff`` do.
* **daily cap** — a member with ``cap`` adds today (local day) is left out until tomorrow; the
  next member takes over. When every member is capped, the ``backup`` members answer (or, without
  backups, all of them: a code with nobody on it would turn customers away).
* **rotate** — ``mode="rotate"`` offers one member at a time, in turn: the one after the member who
  took the last add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal

from engine.text import Msg


@dataclass(frozen=True)
class Shift:
    days: tuple[int, ...]
    start: time
    end: time
    users: tuple[str, ...]

    @classmethod
    def parse(cls, entry: Mapping[str, Any]) -> Shift:
        days = tuple(int(d) for d in entry.get("days") or range(1, 8))
        if any(d < 1 or d > 7 for d in days):
            raise ValueError(Msg("schedule days are ISO weekdays 1 (Monday) .. 7 (Sunday)"))
        users = tuple(str(u) for u in entry.get("users") or [])
        if not users:
            raise ValueError(Msg("a schedule entry needs at least one user"))
        return cls(days, time.fromisoformat(str(entry.get("start", "00:00"))),
                   time.fromisoformat(str(entry.get("end", "23:59"))), users)

    def covers(self, local: datetime) -> bool:
        now, weekday = local.time(), local.isoweekday()
        if self.start <= self.end:
            return weekday in self.days and self.start <= now < self.end
        # over midnight: the part after midnight belongs to the previous day's shift
        yesterday = 7 if weekday == 1 else weekday - 1
        return (weekday in self.days and now >= self.start) or (yesterday in self.days and now < self.end)


@dataclass(frozen=True)
class Pick:
    users: list[str]
    #: why the list is what it is: "schedule", "staff", "capped: backup", "capped: everyone"
    reason: str
    capped: list[str]


def on_duty(staff: Sequence[str], schedule: Sequence[Mapping[str, Any]], local: datetime) -> tuple[list[str], str]:
    shifts = [Shift.parse(s) for s in schedule]
    users = [u for s in shifts if s.covers(local) for u in s.users]
    if users:
        return list(dict.fromkeys(users)), "schedule"
    return list(dict.fromkeys(staff)), "staff"


def pick_staff(staff: Sequence[str], local: datetime, *, schedule: Sequence[Mapping[str, Any]] = (),
               daily_cap: int | None = None, adds_today: Mapping[str, int] | None = None,
               backup: Sequence[str] = (), mode: Literal["all", "rotate"] = "all",
               last_assigned: str | None = None) -> Pick:
    """The members the code should offer at ``local`` (the code's local time)."""
    candidates, reason = on_duty(staff, schedule, local)
    if not candidates:
        raise ValueError(Msg("a channel code needs at least one staff member"))
    counts = adds_today or {}
    capped = [u for u in candidates if daily_cap is not None and counts.get(u, 0) >= daily_cap]
    free = [u for u in candidates if u not in capped]
    if not free:
        spare = [u for u in backup if daily_cap is None or counts.get(u, 0) < daily_cap] or list(backup)
        free, reason = (spare, "capped: backup") if spare else (candidates, "capped: everyone")
    if mode == "rotate" and len(free) > 1:
        order = list(free)
        if last_assigned in order:
            nxt = order[(order.index(last_assigned) + 1) % len(order)]
        else:
            # the member after the last one in the full list, so a capped member's turn passes on
            full = list(dict.fromkeys([*candidates, *backup]))
            start = full.index(last_assigned) + 1 if last_assigned in full else 0
            nxt = next((u for u in full[start:] + full[:start] if u in order), order[0])
        free = [nxt]
    return Pick(free, reason, capped)
