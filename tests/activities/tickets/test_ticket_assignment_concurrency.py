"""Assignment under concurrent ticket creation, on SQLite and PostgreSQL: no agent ever goes above
capacity, and round-robin turns are fair."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from activities.tickets import service
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from tests.engine import ticketkit as kit


def _create_and_assign(db_url: str, n: int) -> int | None:
    with transaction(db_url) as db:
        ticket, _ = service.create_ticket(db, type_key="plain", subject=f"#{n}", group="desk", now=utcnow())
        return service.assign(db, ticket, utcnow()).user_id


def _setup(db_url: str, strategy: str, capacities: list[int]) -> list[int]:
    kit.group(db_url, "desk", strategy)
    kit.ticket_type(db_url, "plain", None, "desk")
    agents = []
    for i, capacity in enumerate(capacities):
        uid = kit.user(db_url, f"agent{i}")
        kit.agent(db_url, uid, ["desk"], capacity=capacity)
        agents.append(uid)
    return agents


def _run(db_url: str, count: int) -> list[int | None]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda n: _create_and_assign(db_url, n), range(count)))


def test_least_loaded_never_exceeds_capacity_under_concurrency(any_db_url: str) -> None:
    agents = _setup(any_db_url, "least_loaded", [3, 5, 4])
    picks = _run(any_db_url, 30)
    counts = Counter(p for p in picks if p is not None)
    assert counts == {agents[0]: 3, agents[1]: 5, agents[2]: 4}
    assert picks.count(None) == 30 - 12
    with session_factory(any_db_url)() as db:
        queued = db.scalars(select(models.Ticket).where(models.Ticket.assignee_id.is_(None))).all()
        assert len(queued) == 18 and all(t.group_key == "desk" for t in queued)  # never without a queue


def test_round_robin_is_fair_under_concurrency(any_db_url: str) -> None:
    agents = _setup(any_db_url, "round_robin", [100, 100, 100])
    picks = _run(any_db_url, 30)
    assert Counter(picks) == {a: 10 for a in agents}
