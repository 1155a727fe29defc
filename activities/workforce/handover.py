"""Handover planning (离职继承 / 在职转接) within WeCom's limits. Pure: no I/O, the clock is passed in.

Given the departing member, their customers and groups, the colleagues who could take over, what
Tideflow knows of earlier transfers and a :class:`Strategy`, :func:`plan` says — before anything is
sent — who goes to whom, who **cannot** move and why (and from when they could), and how the moves
are cut into WeCom calls:

* customers: at most 100 per call, per (handover, takeover) pair;
* a customer transferred twice in the last 90 days is blocked until the older of those two
  transfers is 90 days old; a customer already in a transfer is blocked;
* groups: 1–100 per call, and at most 300 of one owner's groups a day — later groups are planned
  for the following days; a group moved twice in 90 days is blocked;
* the takeover member must be active and seen within the past year; a colleague whose customer
  limit is known is not given more than it allows;
* a resigned member who left more than a year ago (or had not logged in for a year before leaving)
  can no longer hand over anything.

The limits are WeCom's (connectors/wecom/transfer.py cites them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.wecom.transfer import (
    LOGIN_WITHIN_DAYS,
    MAX_CHATS_PER_CALL,
    MAX_CHATS_PER_OWNER_PER_DAY,
    MAX_CUSTOMERS_PER_CALL,
    MAX_TRANSFERS_IN_WINDOW,
    TRANSFER_WINDOW_DAYS,
)
from engine.text import NC_, Msg

WINDOW = timedelta(days=TRANSFER_WINDOW_DAYS)
LOGIN_WINDOW = timedelta(days=LOGIN_WITHIN_DAYS)

#: why a customer or group cannot move now (the plan's ``blocked`` values), in English: an item keeps it as its
#: ``detail`` (the JSON API's words); pages show it in the reader's language (``pgettext("wf.block", …)``: the
#: ``wf.block`` labels of designer/workforce/labels.py are this table, the Chinese is in the catalogue)
BLOCK_REASONS: dict[str, str] = {
    "transferred_twice": NC_("wf.block", "already transferred twice in 90 days"),
    "in_transfer": NC_("wf.block", "already being transferred"),
    "no_colleague": NC_("wf.block", "no colleague can take over"),
    "colleague_full": NC_("wf.block", "the colleague's customer limit is reached"),
    "handover_inactive": NC_("wf.block", "the member left over a year ago or had not logged in for a year"),
}


class TagRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = Field(min_length=1, max_length=80)
    to: str = Field(min_length=1, max_length=64, description="the colleague's WeCom userid")


class Strategy(BaseModel):
    """How a departing member's customers and groups are shared out."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["colleague", "round_robin", "by_tag", "by_team"] = Field(
        default="round_robin", description="colleague: all to one person; round_robin: in turn among the "
                                           "department's members; by_tag: by customer tag; by_team: by the customer's "
                                           "owning team")
    colleague: str | None = Field(default=None, max_length=64, description="kind colleague: the takeover userid")
    department: int | None = Field(default=None, description="round_robin: the department (default: the departing "
                                                             "member's main department)")
    tag_rules: list[TagRule] = Field(default_factory=list, max_length=200,
                                     description="by_tag: the first rule whose tag the customer has wins")
    team_attribute: str = Field(default="team", max_length=60,
                                description="by_team: the customer attribute naming the owning team (a department id)")
    fallback: Literal["colleague", "round_robin"] = Field(
        default="round_robin", description="by_tag / by_team: for customers no rule or team covers")
    groups_to: str | None = Field(default=None, max_length=64,
                                  description="the new owner of every group (default: shared out like the customers)")

    @model_validator(mode="after")
    def _complete(self) -> Strategy:
        if self.kind == "colleague" and not self.colleague:
            raise ValueError(Msg("strategy 'colleague' needs 'colleague' (the takeover member's userid)"))
        if self.kind == "by_tag" and not self.tag_rules:
            raise ValueError(Msg("strategy 'by_tag' needs at least one tag rule"))
        if self.kind in ("by_tag", "by_team") and self.fallback == "colleague" and not self.colleague:
            raise ValueError(Msg("fallback 'colleague' needs 'colleague'"))
        return self


@dataclass(frozen=True)
class Colleague:
    userid: str
    name: str = ""
    departments: tuple[int, ...] = ()
    active: bool = True
    #: last time the member was seen active in WeCom (a message in the archive, a login Tideflow learned of)
    last_active_at: datetime | None = None
    customers: int = 0
    customer_limit: int | None = None


@dataclass(frozen=True)
class CustomerRef:
    external_userid: str
    customer_id: str | None = None
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupRef:
    chat_id: str
    name: str = ""


@dataclass(frozen=True)
class Departing:
    userid: str
    resigned: bool
    departments: tuple[int, ...] = ()
    left_at: datetime | None = None
    last_active_at: datetime | None = None


@dataclass
class Move:
    kind: Literal["customer", "group"]
    id: str
    to: str | None
    customer_id: str | None = None
    blocked: str | None = None
    #: when a blocked move becomes possible (transferred_twice)
    movable_from: datetime | None = None
    #: groups: the day (0 = today) the 300-a-day limit lets it go
    day: int = 0
    rule: str = ""


@dataclass(frozen=True)
class Batch:
    """One WeCom call: up to 100 customers (or chats) to one colleague, not before ``day``."""

    kind: Literal["customer", "group"]
    to: str
    ids: tuple[str, ...]
    day: int = 0


@dataclass
class Plan:
    handover: str
    resigned: bool
    moves: list[Move] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    #: what the planner should know before executing, in words people read in their language
    warnings: list[Msg] = field(default_factory=list)

    def blocked(self) -> list[Move]:
        return [m for m in self.moves if m.blocked]

    def summary(self) -> dict[str, Any]:
        per_to: dict[str, int] = defaultdict(int)
        reasons: dict[str, int] = defaultdict(int)
        for move in self.moves:
            if move.blocked:
                reasons[move.blocked] += 1
            elif move.to:
                per_to[f"{move.kind}:{move.to}"] += 1
        customers = [m for m in self.moves if m.kind == "customer"]
        groups = [m for m in self.moves if m.kind == "group"]
        return {"customers": len(customers), "groups": len(groups),
                "movable_customers": sum(1 for m in customers if not m.blocked),
                "movable_groups": sum(1 for m in groups if not m.blocked),
                "blocked": dict(sorted(reasons.items())), "per_colleague": dict(sorted(per_to.items())),
                "calls": len(self.batches), "days": 1 + max((b.day for b in self.batches), default=0),
                "warnings": list(self.warnings)}


def eligible(colleague: Colleague, departing: Departing, now: datetime) -> bool:
    return (colleague.active and colleague.userid != departing.userid
            and (colleague.last_active_at is None or now - colleague.last_active_at <= LOGIN_WINDOW))


def blocked_by_history(times: Sequence[datetime], now: datetime) -> datetime | None:
    """When a customer (or group) with transfers started at ``times`` may move again (None: now)."""
    recent = sorted(t for t in times if now - t < WINDOW)
    if len(recent) < MAX_TRANSFERS_IN_WINDOW:
        return None
    return recent[-MAX_TRANSFERS_IN_WINDOW] + WINDOW


class _Turns:
    """Round-robin over colleagues, skipping those whose customer limit is reached."""

    def __init__(self, colleagues: Sequence[Colleague]) -> None:
        self.colleagues = sorted(colleagues, key=lambda c: c.userid)
        self.next = 0
        self.given: dict[str, int] = defaultdict(int)

    def room(self, colleague: Colleague) -> bool:
        if colleague.customer_limit is None:
            return True
        return colleague.customers + self.given[colleague.userid] < colleague.customer_limit

    def take(self, count: bool = True) -> tuple[str | None, str | None]:
        """(userid, None) or (None, why not)."""
        if not self.colleagues:
            return None, "no_colleague"
        for step in range(len(self.colleagues)):
            colleague = self.colleagues[(self.next + step) % len(self.colleagues)]
            if not count or self.room(colleague):
                self.next = (self.next + step + 1) % len(self.colleagues)
                if count:
                    self.given[colleague.userid] += 1
                return colleague.userid, None
        return None, "colleague_full"


def plan(departing: Departing, customers: Iterable[CustomerRef], groups: Iterable[GroupRef],
         colleagues: Sequence[Colleague], strategy: Strategy, now: datetime, *,
         customer_history: Mapping[str, Sequence[datetime]] | None = None,
         group_history: Mapping[str, Sequence[datetime]] | None = None,
         in_transfer: Iterable[str] = (), groups_moved_today: int = 0) -> Plan:
    """The handover plan: every customer and group with its new owner or the reason it cannot move."""
    customer_history = customer_history or {}
    group_history = group_history or {}
    moving = set(in_transfer)
    result = Plan(handover=departing.userid, resigned=departing.resigned)
    by_id = {c.userid: c for c in colleagues}
    usable = [c for c in colleagues if eligible(c, departing, now)]
    for c in colleagues:
        if c.userid != departing.userid and c.active and c.last_active_at is not None and c not in usable:
            result.warnings.append(Msg("%(userid)s has not been seen in WeCom for over a year and is left out "
                                       "(WeCom refuses a takeover member who has not logged in within a year)",
                                       userid=c.userid))
    unknown = [c.userid for c in usable if c.last_active_at is None]
    if unknown:
        result.warnings.append(Msg("last login unknown for %(userids)s: WeCom refuses a member who has not logged "
                                   "in within a year",
                                   userids=", ".join(sorted(unknown)[:10]) + (" …" if len(unknown) > 10 else "")))
    for named in filter(None, [strategy.colleague, strategy.groups_to, *[r.to for r in strategy.tag_rules]]):
        if named not in by_id:
            result.warnings.append(Msg("%(userid)s is not a known staff member", userid=named))
        elif not eligible(by_id[named], departing, now):
            result.warnings.append(Msg("%(userid)s cannot take over (inactive, the departing member, or not seen "
                                       "for a year)", userid=named))
    usable_ids = {c.userid for c in usable}

    inactive = departing.resigned and departing.left_at is not None and (
        now - departing.left_at > LOGIN_WINDOW
        or (departing.last_active_at is not None and departing.left_at - departing.last_active_at > LOGIN_WINDOW))
    if (not departing.resigned and departing.last_active_at is not None
            and now - departing.last_active_at > LOGIN_WINDOW):
        inactive = True

    department = strategy.department or (departing.departments[0] if departing.departments else None)
    same_department = [c for c in usable if department is None or department in c.departments]
    turns = _Turns(same_department)
    team_turns: dict[str, _Turns] = {}
    single = _Turns([c for c in usable if c.userid == strategy.colleague])

    def fallback() -> tuple[str | None, str | None, str]:
        if strategy.fallback == "colleague":
            who, why = single.take()
            return who, why, "fallback:colleague"
        who, why = turns.take()
        return who, why, "fallback:round_robin"

    def pick(customer: CustomerRef) -> tuple[str | None, str | None, str]:
        if strategy.kind == "colleague":
            who, why = single.take()
            return who, why, "colleague"
        if strategy.kind == "round_robin":
            who, why = turns.take()
            return who, why, "round_robin"
        if strategy.kind == "by_tag":
            for rule in strategy.tag_rules:
                if rule.tag in customer.tags:
                    if rule.to not in usable_ids:
                        return None, "no_colleague", f"tag:{rule.tag}"
                    chosen = team_turns.setdefault(f"tag:{rule.to}", _Turns([by_id[rule.to]]))
                    who, why = chosen.take()
                    return who, why, f"tag:{rule.tag}"
            return fallback()
        team = customer.attributes.get(strategy.team_attribute)
        if team is not None and str(team).strip():
            key = str(team).strip()
            if key not in team_turns:
                members = [c for c in usable if key in {str(d) for d in c.departments}]
                team_turns[key] = _Turns(members)
            if team_turns[key].colleagues:
                who, why = team_turns[key].take()
                return who, why, f"team:{key}"
        return fallback()

    for customer in customers:
        move = Move("customer", customer.external_userid, None, customer.customer_id)
        until = blocked_by_history(customer_history.get(customer.external_userid, ()), now)
        if inactive:
            move.blocked = "handover_inactive"
        elif customer.external_userid in moving:
            move.blocked = "in_transfer"
        elif until is not None:
            move.blocked, move.movable_from = "transferred_twice", until
        else:
            move.to, move.blocked, move.rule = pick(customer)
        result.moves.append(move)

    group_turns = _Turns(same_department)
    given_today = groups_moved_today
    for group in groups:
        move = Move("group", group.chat_id, None)
        until = blocked_by_history(group_history.get(group.chat_id, ()), now)
        if inactive:
            move.blocked = "handover_inactive"
        elif until is not None:
            move.blocked, move.movable_from = "transferred_twice", until
        else:
            if strategy.groups_to:
                move.to = strategy.groups_to if strategy.groups_to in usable_ids else None
                move.blocked = None if move.to else "no_colleague"
                move.rule = "groups_to"
            elif strategy.kind == "colleague" or (strategy.kind in ("by_tag", "by_team")
                                                   and strategy.fallback == "colleague"):
                move.to = strategy.colleague if strategy.colleague in usable_ids else None
                move.blocked = None if move.to else "no_colleague"
                move.rule = "colleague"
            else:
                move.to, move.blocked = group_turns.take(count=False)
                move.rule = "round_robin"
            if move.to:
                move.day = given_today // MAX_CHATS_PER_OWNER_PER_DAY
                given_today += 1
        result.moves.append(move)

    result.batches = batches(result.moves)
    return result


def batches(moves: Sequence[Move]) -> list[Batch]:
    """The WeCom calls for the movable moves: per kind, day and colleague, chunks of ≤ 100 in plan order."""
    grouped: dict[tuple[str, int, str], list[str]] = {}
    for move in moves:
        if move.blocked or not move.to:
            continue
        grouped.setdefault((move.kind, move.day, move.to), []).append(move.id)
    out: list[Batch] = []
    for (kind, day, to), ids in sorted(grouped.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        size = MAX_CUSTOMERS_PER_CALL if kind == "customer" else MAX_CHATS_PER_CALL
        for start in range(0, len(ids), size):
            out.append(Batch(kind, to, tuple(ids[start:start + size]), day))  # type: ignore[arg-type]
    return out
