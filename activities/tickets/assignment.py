"""Who gets a ticket: pure assignment strategies over a snapshot of a group's agents.

- ``round_robin`` — turns in user-id order, starting after the agent served last (the group's
  ``rr_last``), skipping agents who are not available or full; fair over time.
- ``least_loaded`` — the available agent with the fewest open tickets (ties: the one assigned
  longest ago, then the lowest user id).
- ``skill_based`` — agents are ranked by the ticket's needs in order of preference: an agent with
  the first need beats one with only the second; among equals, more needs matched, then least
  loaded. With needs and no agent having any of them, nobody is picked (the ticket waits in the
  queue for a skilled agent); a ticket without needs goes to the least-loaded agent.

Everyone must be *available*: availability ``online``, inside their working hours (if they have
any), and below capacity (open + pending tickets < capacity). No agent → ``None``: the ticket stays
in its group's queue (it is never without an owner or a queue) and is assigned when someone claims it.

Pure: the caller loads the snapshot and holds the locks (see :mod:`activities.tickets.service`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from activities.tickets.calendar import BusinessCalendar, is_business_time
from engine.text import Msg

Strategy = Literal["round_robin", "least_loaded", "skill_based"]
STRATEGIES: tuple[str, ...] = ("round_robin", "least_loaded", "skill_based")
Availability = Literal["online", "away", "offline"]


@dataclass(frozen=True)
class AgentSnapshot:
    user_id: int
    availability: str
    capacity: int
    load: int
    skills: tuple[str, ...] = ()
    working_hours: BusinessCalendar | None = None
    last_assigned_at: datetime | None = None


@dataclass(frozen=True)
class Pick:
    user_id: int | None
    #: why nobody (or why this agent), for the audit trail
    reason: str
    skipped: dict[int, str] = field(default_factory=dict)


def unavailable_reason(agent: AgentSnapshot, now: datetime) -> str | None:
    """Why ``agent`` cannot take a ticket now, or None when they can."""
    if agent.availability != "online":
        return agent.availability
    if agent.working_hours is not None and not is_business_time(agent.working_hours, now):
        return "outside working hours"
    if agent.load >= agent.capacity:
        return "at capacity"
    return None


def _least_loaded_key(agent: AgentSnapshot) -> tuple[int, float, int]:
    last = agent.last_assigned_at.timestamp() if agent.last_assigned_at else 0.0
    return (agent.load, last, agent.user_id)


def skill_rank(agent_skills: Sequence[str], needs: Sequence[str]) -> tuple[int, ...]:
    """Lexicographic preference: (has need 1, has need 2, …) — bigger is better."""
    have = set(agent_skills)
    return tuple(1 if need in have else 0 for need in needs)


def pick_agent(strategy: str, agents: Sequence[AgentSnapshot], needs: Sequence[str], now: datetime,
               rr_last: int = 0, exclude: Sequence[int] = ()) -> Pick:
    """The agent to assign, or ``Pick(None, why)``. ``exclude``: agents not to pick (a reassignment)."""
    if strategy not in STRATEGIES:
        raise ValueError(Msg("unknown strategy '%(strategy)s'; use one of %(value)s",
                             strategy=strategy, value=', '.join(STRATEGIES)))
    skipped: dict[int, str] = {}
    ready: list[AgentSnapshot] = []
    for agent in agents:
        why = "excluded" if agent.user_id in exclude else unavailable_reason(agent, now)
        if why is None:
            ready.append(agent)
        else:
            skipped[agent.user_id] = why
    if not ready:
        return Pick(None, "no agent available" if agents else "the group has no agents", skipped)
    if strategy == "round_robin":
        ordered = sorted(ready, key=lambda a: a.user_id)
        chosen = next((a for a in ordered if a.user_id > rr_last), ordered[0])
        return Pick(chosen.user_id, "round robin", skipped)
    if strategy == "skill_based" and needs:
        ranked = [(skill_rank(a.skills, needs), a) for a in ready]
        best_rank = max(rank for rank, _ in ranked)
        if not any(best_rank):
            return Pick(None, f"no available agent has the skills {', '.join(needs)}", skipped)
        best = [a for rank, a in ranked if rank == best_rank]
        chosen = min(best, key=_least_loaded_key)
        return Pick(chosen.user_id, f"skills {', '.join(s for s in needs if s in chosen.skills)}", skipped)
    chosen = min(ready, key=_least_loaded_key)
    return Pick(chosen.user_id, f"least loaded ({chosen.load} open)", skipped)
