"""Rule-based auto-tagging: rules as data, defaults, and the hook after profile maintenance."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from activities.profile.auto_tags import TagRuleSpec, apply_tag_rules, default_rules, install_default_rules
from activities.profile.maintenance import maintain_profile
from engine import event_hooks
from engine.customers import tags_of
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
HOOKS = [("10-profile-maintenance", maintain_profile), ("15-auto-tags", apply_tag_rules)]


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_hooks, "_hooks", list(HOOKS))


def send(db_url: str, event_type: str, who: str, payload: dict[str, Any] | None = None, at: datetime = T0) -> str:
    status, seen, _ = store(EventIn(id=uuid.uuid4().hex, type=event_type, customer={"external_id": who},
                                    occurred_at=at, payload=payload or {}), db_url)
    assert status == "accepted"
    return str(seen["customer_id"])


def tags(db_url: str, customer_id: str) -> list[str]:
    with session_factory(db_url)() as db:
        return tags_of(db, customer_id)


def add_rule(db_url: str, **spec: Any) -> int:
    with transaction(db_url) as db:
        row = TagRuleSpec.model_validate({"name": "r", **spec}).write_to(models.TagRule())
        db.add(row)
        db.flush()
        return row.id


# -- rules as data -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"event_type": "order.payed", "add_tags": ["x"]}, "event_type", "did you mean 'order.paid'"),
    ({"event_type": "order.paid", "condition": "customer.orders_count >", "add_tags": ["x"]}, "condition",
     "syntax error"),
    ({"event_type": "order.paid", "condition": "shop.level > 1", "add_tags": ["x"]}, "condition", "unknown name"),
    ({"event_type": "order.paid"}, None, "add or remove at least one tag"),
    ({"event_type": "order.paid", "add_tags": ["x"], "remove_tags": ["x"]}, None, "both added and removed"),
    ({"event_type": "order.paid", "add_tags": ["  "]}, "add_tags", "1–80 characters"),
    ({"event_type": "order.paid", "add_tags": ["x" * 81]}, "add_tags", "1–80 characters"),
    ({"event_type": "order.paid", "add_tags": ["x"], "colour": "red"}, "colour", "Extra inputs"),
])
def test_rule_errors_name_the_field(spec: dict[str, Any], field: str | None, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        TagRuleSpec.model_validate({"name": "r", **spec})
    error = err.value.errors()[0]
    assert message in error["msg"]
    assert (error["loc"][0] if error["loc"] else None) == field


def test_tags_are_trimmed_and_deduplicated() -> None:
    spec = TagRuleSpec(name=" 尝鲜 ", event_type="order.paid", add_tags=[" 尝鲜客", "尝鲜客"])
    assert spec.name == "尝鲜" and spec.add_tags == ["尝鲜客"] and spec.condition == "true"


def test_default_rules_are_valid_data() -> None:
    rules = {r.name: r for r in default_rules()}
    assert [r.add_tags for r in rules.values()] == [["尝鲜客"], ["品质敏感"]]
    first = rules["首单尝鲜客"]
    assert (first.event_type, first.condition) == ("order.paid", "customer.orders_count == 1")
    assert rules["高退货率品质敏感"].event_type == "refund.completed"


def test_installing_the_defaults_is_idempotent_and_keeps_edits(db_url: str) -> None:
    with transaction(db_url) as db:
        assert len(install_default_rules(db)) == 2
    with transaction(db_url) as db:
        first = db.scalar(select(models.TagRule).where(models.TagRule.name == "首单尝鲜客"))
        assert first is not None
        first.enabled = False
        assert install_default_rules(db) == []
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(models.TagRule)))
    assert len(rows) == 2 and [r.enabled for r in rows] == [False, True]


# -- the hook ----------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("hooked")
def test_first_purchase_and_high_return_rate(db_url: str) -> None:
    with transaction(db_url) as db:
        install_default_rules(db)
    cid = send(db_url, "order.paid", "buyer", {"amount_fen": 100})
    assert tags(db_url, cid) == ["尝鲜客"]
    send(db_url, "order.paid", "buyer", {"amount_fen": 100})
    send(db_url, "order.paid", "buyer", {"amount_fen": 100})
    send(db_url, "order.paid", "buyer", {"amount_fen": 100})
    send(db_url, "refund.completed", "buyer")  # 1 / 4 = 0.25
    assert tags(db_url, cid) == ["尝鲜客"]
    send(db_url, "refund.completed", "buyer")  # 2 / 4 = 0.5
    assert tags(db_url, cid) == ["品质敏感", "尝鲜客"]
    with session_factory(db_url)() as db:
        audits = list(db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == "customer.tagged")
                                 .order_by(models.AuditEntry.id)))
    assert [(a.target, a.detail["added"]) for a in audits] == [(cid, ["尝鲜客"]), (cid, ["品质敏感"])]
    assert all(a.actor.startswith("tag-rule:") for a in audits)


@pytest.mark.usefixtures("hooked")
def test_a_refund_without_known_orders_is_no_error(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with transaction(db_url) as db:
        install_default_rules(db)
    with caplog.at_level(logging.WARNING):
        cid = send(db_url, "refund.completed", "old-buyer")
    assert tags(db_url, cid) == [] and "skipped" not in caplog.text


def test_maintenance_must_run_first(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_hooks, "_hooks", list(reversed(HOOKS)))
    with transaction(db_url) as db:
        install_default_rules(db)
    cid = send(db_url, "order.paid", "buyer")
    assert tags(db_url, cid) == []  # the rule saw orders_count before this order
    names = ["15-auto-tags", "20-coupons", "10-profile-maintenance", "00-consent", "30-message-archive"]
    assert sorted(names) == ["00-consent", "10-profile-maintenance", "15-auto-tags", "20-coupons",
                             "30-message-archive"]


@pytest.mark.usefixtures("hooked")
def test_rules_run_in_order_and_see_earlier_changes(db_url: str) -> None:
    add_rule(db_url, event_type="customer.interacted", add_tags=["活跃"], remove_tags=["沉默唤醒"])
    add_rule(db_url, event_type="customer.interacted", condition="'活跃' in customer.tags", add_tags=["回流"])
    add_rule(db_url, event_type="customer.interacted", condition="event.payload.kind == 'live'", add_tags=["看直播"])
    add_rule(db_url, event_type="order.paid", add_tags=["不相干"])
    disabled = add_rule(db_url, event_type="customer.interacted", add_tags=["停用"])
    with transaction(db_url) as db:
        row = db.get(models.TagRule, disabled)
        assert row is not None
        row.enabled = False
    cid = send(db_url, "wecom.contact_added", "fan")
    with transaction(db_url) as db:
        db.add(models.CustomerTag(customer_id=cid, tag="沉默唤醒"))
    send(db_url, "customer.interacted", "fan", {"kind": "chat"})
    assert tags(db_url, cid) == ["回流", "活跃"]


@pytest.mark.usefixtures("hooked")
def test_a_broken_rule_is_skipped_with_a_warning(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    broken = add_rule(db_url, event_type="order.paid", condition="customer.name > 3", add_tags=["坏"])
    with transaction(db_url) as db:  # a row written around the API, with a syntax error
        db.add(models.TagRule(name="syntax", event_type="order.paid", condition="customer.(", add_tags=["坏2"],
                              remove_tags=[], enabled=True))
    add_rule(db_url, event_type="order.paid", condition="customer.orders_count >= 1", add_tags=["好"])
    with caplog.at_level(logging.WARNING, logger="activities.profile.auto_tags"):
        cid = send(db_url, "order.paid", "buyer2")
    assert tags(db_url, cid) == ["好"]
    assert f"tag rule {broken} (r) skipped" in caplog.text and "(syntax) skipped" in caplog.text


@pytest.mark.usefixtures("hooked")
def test_days_since_interaction_is_available_to_rules(db_url: str) -> None:
    add_rule(db_url, event_type="order.paid", condition="customer.days_since_interaction == 3", add_tags=["三天"])
    cid = send(db_url, "order.paid", "buyer3", at=utcnow() - timedelta(days=3, hours=1))
    assert tags(db_url, cid) == ["三天"]
