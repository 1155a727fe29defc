"""engine/follow_ups.py without Temporal: follow-up events are claimed only when this process routes them, and
handed on only after the outermost commit — not when a savepoint is released, never after a rollback; rows a
rolled-back savepoint removed are not routed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from engine import events as ingest
from engine import follow_ups
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction


@pytest.fixture
def handed(any_db_url: str) -> Iterator[list[list[int]]]:
    """A router installed for the test's database that records what it is handed."""
    got: list[list[int]] = []
    uninstall = follow_ups.install(any_db_url, follow_ups.FollowUpRouter(ready=lambda: True, route=got.append))
    yield got
    uninstall()


def customer(url: str) -> str:
    with transaction(url) as db:
        return resolve(db, {"external_id": "c1"}, "c1")


def record(db: object, key: str, cid: str) -> bool:
    return ingest.record_follow_up(db, source="test", external_id=key, type="loyalty.points_earned",
                                   customer_id=cid, payload={"points": 1})


def rows(url: str) -> dict[str, models.EventRecord]:
    with session_factory(url)() as db:
        return {r.external_id: r for r in db.scalars(select(models.EventRecord).where(
            models.EventRecord.source == "test"))}


def test_without_a_router_follow_ups_wait_unclaimed_for_the_re_router(any_db_url: str) -> None:
    cid = customer(any_db_url)
    with transaction(any_db_url) as db:
        assert record(db, "a", cid)
    assert rows(any_db_url)["a"].claimed_until is None
    assert [p["id"] for _, p in ingest.pending(any_db_url, older_than_seconds=0)] == ["test:a"]


def test_handed_on_after_the_outermost_commit_only(any_db_url: str, handed: list[list[int]]) -> None:
    cid = customer(any_db_url)
    with transaction(any_db_url) as db:
        assert record(db, "a", cid)  # its own savepoint was released: not committed yet
        with db.begin_nested():
            assert record(db, "b", cid)
        assert not record(db, "a", cid)  # the same key stores nothing
        assert handed == []
    stored = rows(any_db_url)
    assert handed == [[stored["a"].id, stored["b"].id]]
    assert all(r.claimed_until is not None for r in stored.values())
    assert ingest.pending(any_db_url, older_than_seconds=0) == []  # claimed: not the re-router's


def test_nothing_handed_on_after_a_rollback(any_db_url: str, handed: list[list[int]]) -> None:
    cid = customer(any_db_url)
    with pytest.raises(RuntimeError), transaction(any_db_url) as db:
        record(db, "a", cid)
        raise RuntimeError("the change fails")
    with transaction(any_db_url) as db:  # the next transaction of a session starts with nothing noted
        record(db, "b", cid)
    assert set(rows(any_db_url)) == {"b"} and handed == [[rows(any_db_url)["b"].id]]


def test_rows_a_rolled_back_savepoint_removed_are_not_routed(any_db_url: str, handed: list[list[int]]) -> None:
    cid = customer(any_db_url)
    with transaction(any_db_url) as db:
        record(db, "kept", cid)
        savepoint = db.begin_nested()
        record(db, "undone", cid)
        savepoint.rollback()
    [ids] = handed
    assert len(ids) == 2  # both were noted; only the committed one is read back for routing
    assert [p["id"] for _, p in ingest.stored_unrouted(any_db_url, ids)] == ["test:kept"]


def test_held_collects_instead_of_handing_on(any_db_url: str, handed: list[list[int]]) -> None:
    cid = customer(any_db_url)
    with follow_ups.held() as caused, transaction(any_db_url) as db:
        record(db, "a", cid)
    assert handed == [] and caused == [rows(any_db_url)["a"].id]
