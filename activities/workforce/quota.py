"""The enterprise mass-message allowance (企业群发接收上限) per customer or group. Pure: the clock is passed in.

WeCom (创建企业群发, document path 92135): each customer / each customer group receives at most as
many enterprise mass messages a month as the month has days; the corp may instead choose 7 a
week or 1 a day (企业微信 › 群发助手 › 设置群发规则). Messages beyond the allowance are not delivered
(get_groupmsg_send_result status 3). Windows are natural months / weeks (Monday–Sunday) / days in
China time, WeCom's own calendar.

Tideflow counts what it sent itself (a staff member's own mass sends are invisible to it, which is
why WeCom's status 3 still comes back into the message log). Before a send, :func:`split` says who
is within the allowance, who is at the limit, and — for ``defer`` — when each of those may receive
again.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from engine.text import Msg

CHINA = timezone(timedelta(hours=8))
Policy = Literal["month_days", "week_7", "day_1"]
POLICIES: dict[str, dict[str, str]] = {
    "month_days": {"zh-CN": "每月可接收条数为当月天数（默认）",
                   "en": "as many a month as the month has days (default)"},
    "week_7": {"zh-CN": "每周接收七条", "en": "7 a week"},
    "day_1": {"zh-CN": "每天接收一条", "en": "1 a day"},
}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    limit: int


def window(policy: Policy, at: datetime) -> Window:
    """The receiving window around ``at`` and its limit."""
    if at.tzinfo is None:
        raise ValueError(Msg("at must be timezone-aware"))
    local = at.astimezone(CHINA)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if policy == "day_1":
        return Window(midnight, midnight + timedelta(days=1), 1)
    if policy == "week_7":
        start = midnight - timedelta(days=local.weekday())
        return Window(start, start + timedelta(days=7), 7)
    if policy == "month_days":
        days = calendar.monthrange(local.year, local.month)[1]
        start = midnight.replace(day=1)
        return Window(start, start + timedelta(days=days), days)
    raise ValueError(Msg("unknown quota policy '%(policy)s'; use one of %(value)s",
                         policy=policy, value=', '.join(POLICIES)))


def received_in(window_: Window, times: Iterable[datetime]) -> int:
    return sum(1 for t in times if window_.start <= t < window_.end)


def remaining(policy: Policy, at: datetime, times: Iterable[datetime]) -> int:
    """How many more mass messages a recipient who received at ``times`` may get in the current window."""
    w = window(policy, at)
    return max(0, w.limit - received_in(w, times))


@dataclass
class Split:
    """Recipients within the allowance, and those at the limit with when they may receive again."""

    allowed: list[str] = field(default_factory=list)
    at_limit: dict[str, datetime] = field(default_factory=dict)
    #: recipient → how many they may still receive this window (after this send for the allowed ones)
    left: dict[str, int] = field(default_factory=dict)
    window: Window | None = None

    def counts(self) -> dict[str, int]:
        return {"allowed": len(self.allowed), "at_limit": len(self.at_limit)}


def split(policy: Policy, at: datetime, recipients: Sequence[str],
          history: Mapping[str, Sequence[datetime]]) -> Split:
    """Who may receive one more mass message at ``at`` (``history``: when each received one before)."""
    w = window(policy, at)
    out = Split(window=w)
    for recipient in dict.fromkeys(recipients):
        got = received_in(w, history.get(recipient, ()))
        if got >= w.limit:
            out.at_limit[recipient] = next_free(policy, at, history.get(recipient, ()))
            out.left[recipient] = 0
        else:
            out.allowed.append(recipient)
            out.left[recipient] = w.limit - got - 1
    return out


def next_free(policy: Policy, at: datetime, times: Sequence[datetime]) -> datetime:
    """The first window start from ``at`` on in which the recipient is below the limit again."""
    w = window(policy, at)
    for _ in range(400):
        if received_in(w, times) < w.limit:
            return max(at, w.start)
        w = window(policy, w.end)
    return w.start
