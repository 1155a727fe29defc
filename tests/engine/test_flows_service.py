"""Drafts, immutable numbered versions, rollback and per-node statistics (engine.flows)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from engine import flows
from engine.compiler import FlowInvalid
from engine.db import models
from engine.db.session import transaction
from engine.journeys import add_stats


def welcome(template: str = "你好 {{ customer.name }}") -> dict[str, Any]:
    return {
        "schema": "tideflow/flow@1",
        "id": "welcome",
        "name": "新客欢迎",
        "nodes": [
            {"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"}},
            {"id": "hello", "type": "action.send_message", "config": {"template": template}},
            {"id": "bought", "type": "logic.condition", "config": {"expr": "customer.orders_count > 0"}},
            {"id": "tag", "type": "action.tag", "config": {"add": ["尝鲜客"]}},
        ],
        "edges": [
            {"from": "start", "to": "hello"},
            {"from": "hello", "to": "bought"},
            {"from": "bought", "port": "yes", "to": "tag"},
        ],
    }


def _audit(db_url: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with transaction(db_url) as db:
        return [(e.action, e.target, e.detail) for e in db.scalars(select(models.AuditEntry)
                                                                    .order_by(models.AuditEntry.id))]


def test_an_invalid_draft_can_be_saved(db_url: str) -> None:
    doc = welcome()
    doc["nodes"][1]["type"] = "action.send_mesage"
    with transaction(db_url) as db:
        record, checked = flows.save_draft(db, doc, "alice")
        assert (record.id, record.name, record.kind, record.status) == ("welcome", "新客欢迎", "journey", "draft")
        assert record.current_version is None
    assert [p.code for p in checked.problems] == ["unknown_type"]
    with transaction(db_url) as db:
        stored = db.get(models.FlowRecord, "welcome")
        assert stored is not None and stored.draft == doc and stored.updated_by == "alice"
    assert _audit(db_url) == [("flow.created", "welcome", {})]


def test_saving_again_updates_the_draft(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
    doc = welcome("您好")
    doc["name"] = "新客欢迎 v2"
    with transaction(db_url) as db:
        record, checked = flows.save_draft(db, doc, "bob")
        assert checked.ok
        assert (record.name, record.updated_by, record.draft["nodes"][1]["config"]["template"]) == (
            "新客欢迎 v2", "bob", "您好")
    assert [a[0] for a in _audit(db_url)] == ["flow.created", "flow.saved"]


@pytest.mark.parametrize("document", [{"name": "no id"}, {"id": "has space"}, {"id": 7}, ["not", "an", "object"]])
def test_a_draft_needs_an_object_with_an_id(db_url: str, document: Any) -> None:
    with transaction(db_url) as db, pytest.raises(flows.FlowError):
        flows.save_draft(db, document, "alice")


def test_publish_refuses_an_invalid_flow(db_url: str) -> None:
    doc = welcome()
    doc["nodes"][1]["type"] = "action.send_mesage"
    doc["nodes"][2]["config"]["expr"] = "customer.orders_count >"
    with transaction(db_url) as db:
        flows.save_draft(db, doc, "alice")
    with transaction(db_url) as db, pytest.raises(FlowInvalid) as exc:
        flows.publish(db, "welcome", "alice")
    assert [(p.node, p.code) for p in exc.value.problems] == [("hello", "unknown_type"), ("bought", "bad_expression")]
    with transaction(db_url) as db:
        assert db.scalar(select(models.FlowVersion)) is None
        record = db.get(models.FlowRecord, "welcome")
        assert record is not None and record.status == "draft" and record.current_version is None


def test_publish_an_unknown_flow(db_url: str) -> None:
    with transaction(db_url) as db, pytest.raises(flows.FlowError, match="does not exist"):
        flows.publish(db, "nope", "alice")


def test_publish_creates_version_1(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
    with transaction(db_url) as db:
        version = flows.publish(db, "welcome", "alice")
        assert (version.flow_id, version.version, version.created_by) == ("welcome", 1, "alice")
        assert version.trigger_type == "trigger.event" and version.trigger_event == "wecom.contact_added"
        assert version.document == welcome()
        assert version.compiled["version"] == 1
        assert version.compiled["hash"] == version.hash
        assert version.compiled["nodes"]["bought"]["next"] == {"yes": "tag"}
        record = db.get(models.FlowRecord, "welcome")
        assert record is not None and (record.status, record.current_version) == ("active", 1)
    assert _audit(db_url)[-1] == ("flow.published", "welcome", {"version": 1, "hash": version.hash})


def test_publish_a_given_document(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, {"id": "welcome", "name": "empty draft"}, "alice")
        version = flows.publish(db, "welcome", "alice", document=welcome())
        assert version.version == 1 and version.document == welcome()


def test_republishing_unchanged_returns_the_same_version(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        first = flows.publish(db, "welcome", "alice")
    moved = welcome()
    for i, n in enumerate(moved["nodes"]):
        n["ui"] = {"x": 100 * i, "y": 40}
    with transaction(db_url) as db:
        flows.save_draft(db, moved, "bob")  # canvas positions only
        again = flows.publish(db, "welcome", "bob")
        assert (again.version, again.hash) == (1, first.hash)
        assert db.scalars(select(models.FlowVersion.version)).all() == [1]


def test_a_change_publishes_version_2_and_keeps_version_1(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        v1 = flows.publish(db, "welcome", "alice")
    with transaction(db_url) as db:
        flows.save_draft(db, welcome("您好 {{ customer.name }}"), "alice")
        v2 = flows.publish(db, "welcome", "alice")
        assert v2.version == 2 and v2.hash != v1.hash
        assert flows.latest_version(db, "welcome").version == 2  # type: ignore[union-attr]
        old = db.get(models.FlowVersion, ("welcome", 1))
        assert old is not None and old.document["nodes"][1]["config"]["template"] == "你好 {{ customer.name }}"
        assert db.get(models.FlowRecord, "welcome").current_version == 2  # type: ignore[union-attr]


def test_rollback_publishes_the_old_document_as_version_3(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        v1 = flows.publish(db, "welcome", "alice")
        flows.save_draft(db, welcome("您好"), "alice")
        flows.publish(db, "welcome", "alice")
    with transaction(db_url) as db:
        v3 = flows.rollback(db, "welcome", 1, "carol")
        assert v3.version == 3
        assert v3.hash == v1.hash
        assert v3.document == welcome()
        record = db.get(models.FlowRecord, "welcome")
        assert record is not None and record.current_version == 3 and record.draft == welcome()
        assert sorted(db.scalars(select(models.FlowVersion.version))) == [1, 2, 3]
    assert _audit(db_url)[-1] == ("flow.rolled_back", "welcome", {"to": 1, "as": 3})


def test_rollback_to_a_missing_version(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        flows.publish(db, "welcome", "alice")
    with transaction(db_url) as db, pytest.raises(flows.FlowError, match="has no version 7"):
        flows.rollback(db, "welcome", 7, "alice")


def test_versions_are_immutable_snapshots(db_url: str) -> None:
    doc = welcome()
    with transaction(db_url) as db:
        flows.save_draft(db, doc, "alice")
        flows.publish(db, "welcome", "alice")
    edited = copy.deepcopy(doc)
    edited["nodes"][3]["config"]["add"] = ["复购客"]
    with transaction(db_url) as db:
        flows.save_draft(db, edited, "alice")  # a new draft does not touch version 1
    with transaction(db_url) as db:
        v1 = db.get(models.FlowVersion, ("welcome", 1))
        assert v1 is not None and v1.document == doc
        assert v1.compiled["nodes"]["tag"]["config"]["add"] == ["尝鲜客"]


def test_status_changes(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        with pytest.raises(flows.FlowError, match="never been published"):
            flows.set_status(db, "welcome", "active", "alice")
        flows.publish(db, "welcome", "alice")
        assert flows.set_status(db, "welcome", "paused", "alice").status == "paused"
        with pytest.raises(flows.FlowError, match="unknown status"):
            flows.set_status(db, "welcome", "deleted", "alice")
        flows.set_status(db, "welcome", "archived", "alice")
        with pytest.raises(flows.FlowError, match="archived"):
            flows.save_draft(db, welcome(), "alice")


def test_stats_shape(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        flows.publish(db, "welcome", "alice")
        assert flows.stats(db, "welcome") == {"flow": "welcome", "version": 1, "nodes": {}}
        add_stats(db, "welcome", 1, [
            ["start", "entered", "", 5], ["start", "left", "out", 5],
            ["hello", "entered", "", 5], ["hello", "left", "out", 4], ["hello", "left", "skipped", 1],
            ["bought", "entered", "", 5], ["bought", "left", "yes", 2], ["bought", "left", "no", 3],
            ["tag", "entered", "", 2], ["tag", "failed", "", 1], ["hello", "waiting", "", 0],
        ])
        add_stats(db, "welcome", 1, [["start", "entered", "", 1], ["start", "left", "out", 1]])
        add_stats(db, "welcome", 2, [["start", "entered", "", 99]])
        stats = flows.stats(db, "welcome")
        assert stats["flow"] == "welcome" and stats["version"] == 1
        assert stats["nodes"]["start"] == {"entered": 6, "left": {"out": 6}, "waiting": 0, "failed": 0,
                                           "converted": 0}
        assert stats["nodes"]["hello"]["left"] == {"out": 4, "skipped": 1}
        assert stats["nodes"]["bought"]["left"] == {"yes": 2, "no": 3}
        assert stats["nodes"]["tag"] == {"entered": 2, "left": {}, "waiting": 0, "failed": 1, "converted": 0}
        assert flows.stats(db, "welcome", version=2)["nodes"] == {
            "start": {"entered": 99, "left": {}, "waiting": 0, "failed": 0, "converted": 0}}


def test_stats_of_an_unpublished_or_unknown_flow(db_url: str) -> None:
    with transaction(db_url) as db:
        flows.save_draft(db, welcome(), "alice")
        assert flows.stats(db, "welcome") == {"flow": "welcome", "version": None, "nodes": {}}
        with pytest.raises(flows.FlowError):
            flows.stats(db, "ghost")
