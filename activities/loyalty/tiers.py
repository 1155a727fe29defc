"""Member tiers (会员等级): thresholds on rolling 12-month spend or on points. Pure: no I/O.

A program lists its tiers from the lowest up, each with a ``threshold`` (fen of spend, or points) and
its benefits (a points multiplier, a coupon campaign on upgrade, a birthday gift). The tier a value
earns is the highest whose threshold it reaches.

* **upgrades at once** — whenever spend or points grow (an order paid, points earned), a higher tier
  is granted immediately (:func:`evaluate` with ``allow_downgrade=False``);
* **downgrades on schedule** — only the scheduled review (``action.loyalty_upkeep``) may lower a tier,
  and never within ``keep_for`` (default 12 months) of the last change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any, Literal

from engine.text import Msg


@dataclass(frozen=True)
class Tier:
    key: str
    name: str
    threshold: int
    multiplier: Decimal = Decimal(1)
    upgrade_coupon: str | None = None
    birthday_coupon: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Tier:
        return cls(key=str(data["key"]), name=str(data.get("name") or data["key"]), threshold=int(data["threshold"]),
                   multiplier=Decimal(str(data.get("multiplier", "1"))),
                   upgrade_coupon=data.get("upgrade_coupon") or None,
                   birthday_coupon=data.get("birthday_coupon") or None)


def check_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers:
        raise ValueError(Msg("a program needs at least one tier"))
    if tiers[0].threshold != 0:
        raise ValueError(Msg("the first tier is where everyone starts: its threshold must be 0"))
    keys = [t.key for t in tiers]
    if len(set(keys)) != len(keys):
        raise ValueError(Msg("tier keys must be unique"))
    if any(b.threshold <= a.threshold for a, b in pairwise(tiers)):
        raise ValueError(Msg("tier thresholds must rise strictly from the lowest tier up"))
    if any(t.multiplier <= 0 for t in tiers):
        raise ValueError(Msg("tier multipliers must be positive"))


def tier_for(value: int, tiers: Sequence[Tier]) -> Tier:
    found = tiers[0]
    for tier in tiers:
        if value >= tier.threshold:
            found = tier
    return found


def rank(key: str | None, tiers: Sequence[Tier]) -> int:
    return next((i for i, t in enumerate(tiers) if t.key == key), -1)


@dataclass(frozen=True)
class Change:
    before: str | None
    after: str
    direction: Literal["up", "down", "none"]


def evaluate(current: str | None, value: int, tiers: Sequence[Tier], *, allow_downgrade: bool,
             changed_at: datetime | None = None, now: datetime | None = None,
             keep_for: timedelta = timedelta(days=365)) -> Change:
    """The tier a member should hold given ``value`` (spend in fen or points)."""
    wanted = tier_for(value, tiers)
    have, want = rank(current, tiers), rank(wanted.key, tiers)
    if current is None or have < 0:
        # joining (or a tier that no longer exists): the base tier is no change worth telling
        return Change(current, wanted.key, "up" if want > 0 else "none")
    if want > have:
        return Change(current, wanted.key, "up")
    if want < have and allow_downgrade:
        if changed_at is not None and now is not None and now - changed_at < keep_for:
            return Change(current, current, "none")
        return Change(current, wanted.key, "down")
    return Change(current, current, "none")
