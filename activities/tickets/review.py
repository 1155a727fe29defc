"""Multi-level review (三级复核): a chain of approvers, each deciding approve / reject / send back.

A chain is a list of steps; one step is *waiting* at a time. A decision on the waiting step:

- ``approve`` — the step is approved; the next step starts waiting, or after the last the chain's
  outcome is ``approved``;
- ``reject`` — the chain's outcome is ``rejected`` (a reason is required);
- ``send_back`` — the step is sent back: the previous step waits again (its approver looks once
  more), or at the first step the chain's outcome is ``sent_back`` (back to the agent; a flow can
  loop to the review node, which opens a new round).

A step with a ``timeout`` that passes undecided acts by its ``on_timeout``: ``reject``, ``approve``
or ``skip`` (move on as if approved, recorded as skipped). An approver may *delegate* the waiting
step to another user, who may then decide it. Every decision records who, when and why.

Approvers are named as ``supervisor`` (the ticket group's supervisor), ``role:<role>`` (any user
with that role, e.g. ``role:finance``) or ``user:<username>``. Admins may always decide.

Pure: the service applies the transitions to ``ticket_reviews`` rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.durations import parse_duration
from engine.text import Msg, MsgError

Decision = Literal["approve", "reject", "send_back"]
DECISIONS: tuple[str, ...] = ("approve", "reject", "send_back")
#: step statuses: not reached yet, waiting for a decision, or decided
StepStatus = Literal["queued", "waiting", "approved", "rejected", "sent_back", "skipped", "timed_out"]
Outcome = Literal["approved", "rejected", "sent_back"]
APPROVER = re.compile(r"^(supervisor|role:[a-z]+|user:[A-Za-z0-9_.@\-]{1,80})$")


class ReviewStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120, examples=["组长复核"])
    approver: str = Field(examples=["supervisor", "role:finance", "user:li.manager"],
                          description="supervisor (the group's), role:<role> or user:<username>")
    timeout: str | None = Field(default=None, description="ISO 8601 duration the step may wait, e.g. P1D",
                                json_schema_extra={"format": "duration"})
    on_timeout: Literal["reject", "approve", "skip"] = "reject"

    @field_validator("approver")
    @classmethod
    def _approver(cls, value: str) -> str:
        if not APPROVER.match(value):
            raise ValueError(Msg("'%(value)s' is not an approver; write supervisor, role:<role> or "
                                 "user:<username>",
                                 value=value))
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class ReviewError(MsgError):
    """A decision that cannot apply (wrong step, chain already decided, missing reason)."""


@dataclass(frozen=True)
class Transition:
    statuses: tuple[str, ...]
    #: the step now waiting, or None when the chain has an outcome
    waiting: int | None
    outcome: Outcome | None


def start(steps: int) -> Transition:
    if steps < 1:
        raise ReviewError(Msg("a review chain needs at least one step"))
    return Transition(("waiting", *("queued",) * (steps - 1)), 0, None)


def waiting_step(statuses: Sequence[str]) -> int | None:
    return next((i for i, s in enumerate(statuses) if s == "waiting"), None)


def decide(statuses: Sequence[str], step: int, decision: str, reason: str = "") -> Transition:
    """Apply ``decision`` to ``step`` (which must be the waiting one)."""
    if decision not in DECISIONS:
        raise ReviewError(Msg("unknown decision '%(decision)s'; use approve, reject or send_back",
                              decision=decision))
    current = waiting_step(statuses)
    if current is None:
        raise ReviewError(Msg("the review is already decided"))
    if step != current:
        raise ReviewError(Msg("step %(step)s is not waiting for a decision; step %(current)s is",
                              step=step + 1, current=current + 1))
    if decision in ("reject", "send_back") and not reason.strip():
        raise ReviewError(Msg("a %(decision)s needs a reason", decision=decision.replace('_', ' ')))
    new = list(statuses)
    if decision == "approve":
        return _advance(new, step, "approved")
    if decision == "reject":
        new[step] = "rejected"
        return Transition(tuple(new), None, "rejected")
    new[step] = "sent_back"
    if step == 0:
        return Transition(tuple(new), None, "sent_back")
    new[step - 1] = "waiting"
    return Transition(tuple(new), step - 1, None)


def time_out(statuses: Sequence[str], step: int, on_timeout: str) -> Transition:
    """The waiting ``step`` ran out of time: act by its ``on_timeout``."""
    if waiting_step(statuses) != step:
        raise ReviewError(Msg("step %(step)s is not waiting", step=step + 1))
    new = list(statuses)
    if on_timeout == "reject":
        new[step] = "timed_out"
        return Transition(tuple(new), None, "rejected")
    return _advance(new, step, "timed_out" if on_timeout == "approve" else "skipped")


def _advance(new: list[str], step: int, status: str) -> Transition:
    new[step] = status
    if step == len(new) - 1:
        return Transition(tuple(new), None, "approved")
    new[step + 1] = "waiting"
    return Transition(tuple(new), step + 1, None)


def may_decide(actor_id: int, actor_role: str, actor_username: str, approver: str, approver_id: int | None,
               delegated_to: int | None) -> bool:
    """Whether this user may decide a step with this approver (or its delegate)."""
    if actor_role == "admin":
        return True
    if delegated_to is not None:
        return actor_id == delegated_to
    if approver_id is not None and actor_id == approver_id:
        return True
    if approver.startswith("role:"):
        return actor_role == approver.removeprefix("role:")
    if approver.startswith("user:"):
        return actor_username == approver.removeprefix("user:")
    return False
