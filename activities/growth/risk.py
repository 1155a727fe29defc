"""Anti-abuse (防羊毛): a risk score for each invite from a set of rules. Pure: no I/O.

Every rule that fires adds its points (0–100 in all, capped). A score at or above ``review_at``
sends the invite to the review queue (it does not count until a reviewer approves it); at or above
``reject_at`` (when set) it is rejected at once. The hits are kept with the invite, so reviewers
see *why*.

=====================  ==================================================================  ======
rule                   fires when                                                          points
=====================  ==================================================================  ======
``fast_invites``       the inviter got ≥ ``fast_count`` invites within ``fast_window``        30
``early_leavers``      ≥ ``leaver_count`` of the inviter's earlier invitees deleted the       30
                       friend before their invite counted
``no_nickname``        the invitee's account has no nickname (where the platform says)        15
``no_avatar``          … no avatar (where the platform says)                                 15
``new_account``        … was registered less than ``new_account_age`` ago (where known)       20
``shared_device``      the invitee's device / IP / address is shared with ≥                  40
                       ``shared_count`` other invitees of the campaign (where known)
``blocklisted``        the invitee or the inviter is on the blocklist                        100
=====================  ==================================================================  ======
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True)
class RiskRules:
    fast_count: int = 5
    fast_window: timedelta = timedelta(minutes=10)
    leaver_count: int = 2
    new_account_age: timedelta = timedelta(days=7)
    shared_count: int = 2
    review_at: int = 50
    reject_at: int | None = None
    points: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_POINTS))

    def weight(self, rule: str) -> int:
        return int(self.points.get(rule, DEFAULT_POINTS[rule]))


DEFAULT_POINTS: dict[str, int] = {"fast_invites": 30, "early_leavers": 30, "no_nickname": 15, "no_avatar": 15,
                                  "new_account": 20, "shared_device": 40, "blocklisted": 100}


@dataclass(frozen=True)
class RiskFacts:
    added_at: datetime
    #: times of the inviter's earlier invites in this campaign
    inviter_recent: Sequence[datetime] = ()
    #: the inviter's earlier invitees who left before counting
    inviter_leavers: int = 0
    invitee_name: str | None = None
    #: None: the platform did not say
    invitee_has_avatar: bool | None = None
    invitee_registered_at: datetime | None = None
    #: marker kind (device, ip, address) → how many other invitees of the campaign share it
    shared_markers: Mapping[str, int] = field(default_factory=dict)
    #: blocklist entries that matched (e.g. ["phone", "external_userid"])
    blocklisted: Sequence[str] = ()


@dataclass(frozen=True)
class Hit:
    rule: str
    points: int
    why: str


@dataclass(frozen=True)
class RiskScore:
    score: int
    hits: list[Hit]
    decision: Literal["pass", "review", "reject"]

    def as_dict(self) -> dict[str, object]:
        return {"score": self.score, "decision": self.decision,
                "hits": [{"rule": h.rule, "points": h.points, "why": h.why} for h in self.hits]}


def score(rules: RiskRules, facts: RiskFacts) -> RiskScore:
    hits: list[Hit] = []
    window_start = facts.added_at - rules.fast_window
    recent = [t for t in facts.inviter_recent if window_start <= t <= facts.added_at]
    if len(recent) + 1 >= rules.fast_count:
        hits.append(Hit("fast_invites", rules.weight("fast_invites"),
                        f"{len(recent) + 1} invites within {int(rules.fast_window.total_seconds() // 60)} min"))
    if facts.inviter_leavers >= rules.leaver_count:
        hits.append(Hit("early_leavers", rules.weight("early_leavers"),
                        f"{facts.inviter_leavers} earlier invitees left before counting"))
    if facts.invitee_name is not None and not facts.invitee_name.strip():
        hits.append(Hit("no_nickname", rules.weight("no_nickname"), "the account has no nickname"))
    if facts.invitee_has_avatar is False:
        hits.append(Hit("no_avatar", rules.weight("no_avatar"), "the account has no avatar"))
    if facts.invitee_registered_at is not None and facts.added_at - facts.invitee_registered_at < rules.new_account_age:
        hits.append(Hit("new_account", rules.weight("new_account"), "the account was registered recently"))
    shared = sorted(kind for kind, n in facts.shared_markers.items() if n >= rules.shared_count)
    if shared:
        hits.append(Hit("shared_device", rules.weight("shared_device"),
                        f"{', '.join(shared)} shared with other invitees"))
    if facts.blocklisted:
        hits.append(Hit("blocklisted", rules.weight("blocklisted"),
                        f"on the blocklist ({', '.join(facts.blocklisted)})"))
    total = min(100, sum(h.points for h in hits))
    decision: Literal["pass", "review", "reject"] = "pass"
    if rules.reject_at is not None and total >= rules.reject_at:
        decision = "reject"
    elif total >= rules.review_at:
        decision = "review"
    return RiskScore(total, hits, decision)
