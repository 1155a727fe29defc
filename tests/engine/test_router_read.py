"""The router's one read per event (``Router._customer_state``): whether the customer may enter each flow and
which of its journeys run — a merged customer's journeys counted as the survivor's — from two queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from engine.customers import merged_ids, resolve
from engine.db import models
from engine.db.session import get_engine, session_factory, transaction
from engine.router import Router


def entry(reentry: str, after: str | None = None) -> dict[str, Any]:
    return {"reentry": reentry, **({"reentry_after": after} if after else {})}


def flow(flow_id: str, reentry: str, after: str | None = None) -> dict[str, Any]:
    return {"flow_id": flow_id, "settings": {"entry": entry(reentry, after)}}


def journey(wid: str, flow_id: str, customer_id: str, status: str, ended: datetime | None = None) -> models.Journey:
    return models.Journey(workflow_id=wid, flow_id=flow_id, version=1, customer_id=customer_id, status=status,
                          checkpoint=1, started_at=datetime.now(UTC) - timedelta(days=2), ended_at=ended)


def test_entry_verdicts_and_running_journeys_of_a_merged_customer(db_url: str) -> None:
    with transaction(db_url) as db:
        a = resolve(db, {"external_id": "read-a"})
        b = resolve(db, {"external_id": "read-b"})
        other = resolve(db, {"external_id": "read-x"})
        db.get(models.Customer, b).merged_into = a  # type: ignore[union-attr]
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        db.add_all([journey("j-f-a", "f", a, "completed", hour_ago), journey("j-g-b", "g", b, "running"),
                    journey("j-h-a", "h", a, "waiting"), journey("j-r-a", "r", a, "completed", hour_ago),
                    journey("j-f-x", "f", other, "running")])
    router = Router(None, db_url, "q")  # type: ignore[arg-type]  # the read needs no Temporal
    flows = [flow("f", "never"), flow("g", "after", "P1D"), flow("r", "after", "PT30M"), flow("k", "always")]
    for asked in (a, b):  # the survivor, or the id merged into it: the same person
        verdicts, running = router._customer_state(flows, asked, running=True)
        assert verdicts == [(False, "already entered (re-entry: never)"), (False, "still in the flow"),
                            (True, ""), (True, "")]
        assert sorted(running) == ["j-g-b", "j-h-a"]
    assert router._customer_state(flows[:1], a, running=False) == ([(False, "already entered (re-entry: never)")],
                                                                   [])
    assert sorted(router._customer_state([], a, running=True)[1]) == ["j-g-b", "j-h-a"]
    assert router._customer_state([], a, running=False) == ([], [])
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(get_engine(db_url), "before_cursor_execute", record)
    try:  # a customer nobody was merged into (almost every event's): two queries, merges and journeys
        assert router._customer_state(flows, other, running=True) == (
            [(False, "already entered (re-entry: never)"), (True, ""), (True, ""), (True, "")], ["j-f-x"])
    finally:
        event.remove(get_engine(db_url), "before_cursor_execute", record)
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]) == 2


def test_merged_ids_follows_merges_below_and_above(any_db_url: str) -> None:
    with transaction(any_db_url) as db:
        top, mid, low, side, lone = (resolve(db, {"external_id": f"m-{n}"})
                                     for n in ("top", "mid", "low", "side", "lone"))
        db.get(models.Customer, mid).merged_into = top  # type: ignore[union-attr]
        db.get(models.Customer, side).merged_into = top  # type: ignore[union-attr]
        db.get(models.Customer, low).merged_into = mid  # type: ignore[union-attr]
    with session_factory(any_db_url)() as db:
        for asked in (top, mid, low, side):
            found = merged_ids(db, asked)
            assert found[0] == top and sorted(found) == sorted([top, mid, low, side])
        assert merged_ids(db, lone) == [lone]
        assert merged_ids(db, "c_nobody") == ["c_nobody"]


def test_entry_history_keeps_each_customer_and_flow_apart(db_url: str) -> None:
    """A broadcast page reads every customer's history in one flow at once: each gets its own journeys only."""
    from engine.router import entry_history, may_enter

    with transaction(db_url) as db:
        c1, c2, c3 = (resolve(db, {"external_id": f"page-{n}"}) for n in range(3))
        db.add_all([journey("p-f-1", "f", c1, "completed", datetime.now(UTC) - timedelta(hours=1)),
                    journey("p-g-2", "g", c2, "running"), journey("p-f-3", "f", c3, "waiting")])
    with session_factory(db_url)() as db:
        history = entry_history(db, ["f"], [c1, c2, c3])
    assert history.running == []
    assert [status for status, _, _ in history.of("f", c1)] == ["completed"]
    assert history.of("f", c2) == [] and history.of("g", c2) == []  # flow g was not asked for
    now = datetime.now(UTC)
    assert [may_enter(entry("after", "PT30M"), history.of("f", c), now) for c in (c1, c2, c3)] == [
        (True, ""), (True, ""), (False, "still in the flow")]
    with session_factory(db_url)() as db:
        assert entry_history(db, ["f"], []).journeys == {}
        assert sorted(entry_history(db, [], [c1, c2, c3], running=True).running) == ["p-f-3", "p-g-2"]


def test_merged_ids_ends_on_a_merge_pointer_cycle(any_db_url: str) -> None:
    with transaction(any_db_url) as db:
        a, b = resolve(db, {"external_id": "cyc-a"}), resolve(db, {"external_id": "cyc-b"})
        db.get(models.Customer, a).merged_into = b  # type: ignore[union-attr]
        db.get(models.Customer, b).merged_into = a  # type: ignore[union-attr]
    with session_factory(any_db_url)() as db:
        assert merged_ids(db, a) == [a]  # no survivor to start from: the id asked for, and no hang
