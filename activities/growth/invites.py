"""When an invite counts (裂变有效邀请). Pure: no I/O — the service gathers the facts.

An *invite* is one new friend added through a participant's personal code. Its life:

``pending`` (a friend, waiting the minimum friend duration) → ``valid`` (counts) → maybe ``revoked``
(the friend was deleted while the campaign ran); or straight to ``rejected`` (with a reason), or to
``review`` when its risk score is high (a reviewer's decision then makes it ``pending``/``valid`` or
``rejected``); a friend deleted before the minimum duration makes it ``left``.

Rules (each configurable on the campaign, all on by default) — and what LinkWeChat's 任务宝 lacks:

* **new customers only** — the invitee must be unknown to Tideflow before the add: across every
  channel, after identity resolution (an OA follower or a shop buyer who later adds a staff member
  is *not* new). 任务宝 counts anyone.
* **one invitee counts once per campaign** — the campaign counts customers, not (record, staff,
  customer) rows: adding two staff members, or two participants' codes, counts once (the first).
* **minimum friend duration** and **deletion revokes** — 任务宝 counts at once and never takes back.
* **no self-invites** — a participant adding through their own code (or a merged identity of theirs).
* **time window** — the add must happen between the campaign's start and end; a late callback for
  an add after the end does not count (任务宝 has no end-time check while counting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Status = Literal["pending", "valid", "review", "rejected", "revoked", "left"]
#: statuses that occupy the invitee for the campaign (a second invite of them is a duplicate)
HOLDING: frozenset[str] = frozenset({"pending", "valid", "review"})


@dataclass(frozen=True)
class InviteRules:
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    new_customers_only: bool = True
    min_friend_duration: timedelta = timedelta(0)
    no_self_invites: bool = True
    #: a friend deleted after the invite counted takes the count back (until the campaign ends)
    deletion_revokes: bool = True


@dataclass(frozen=True)
class InviteFacts:
    added_at: datetime
    #: the invitee is the inviter (after identity resolution)
    same_person: bool
    #: when Tideflow first knew the invitee before this add (None: never — a new customer)
    known_since: datetime | None
    #: the invitee already has a pending/valid/review invite in this campaign
    already_invited: bool
    campaign_active: bool = True


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str = ""


def judge(rules: InviteRules, facts: InviteFacts) -> Verdict:
    """The status of a new invite before its risk score is looked at."""
    if not facts.campaign_active:
        return Verdict("rejected", "campaign_not_active")
    if rules.starts_at is not None and facts.added_at < rules.starts_at:
        return Verdict("rejected", "before_start")
    if rules.ends_at is not None and facts.added_at >= rules.ends_at:
        return Verdict("rejected", "after_end")
    if rules.no_self_invites and facts.same_person:
        return Verdict("rejected", "self_invite")
    if facts.already_invited:
        return Verdict("rejected", "duplicate")
    if rules.new_customers_only and facts.known_since is not None and facts.known_since < facts.added_at:
        return Verdict("rejected", "not_new_customer")
    if rules.min_friend_duration > timedelta(0):
        return Verdict("pending", "")
    return Verdict("valid", "")


def qualifies_at(rules: InviteRules, added_at: datetime) -> datetime:
    """When a pending invite becomes valid if the invitee is still a friend."""
    return added_at + rules.min_friend_duration


def after_deletion(rules: InviteRules, status: str, removed_at: datetime, *,
                   rewarded: bool = False) -> Verdict | None:
    """What a friend deletion does to an invite (None: nothing changes)."""
    if status in ("pending", "review"):
        return Verdict("left", "deleted_before_min_duration" if status == "pending" else "deleted_in_review")
    running = rules.ends_at is None or removed_at < rules.ends_at
    if status == "valid" and rules.deletion_revokes and not rewarded and running:
        return Verdict("revoked", "friend_deleted")
    return None


def remaining(valid: int, goal: int) -> int:
    """How many more valid invites the participant needs (还差 N 位好友)."""
    return max(0, goal - valid)
