"""action.update_profile: the config rules, applying a change, and the node in a journey."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from activities.profile import NODE_TYPES
from activities.profile.update_profile import (
    ProfileChange,
    ProfileError,
    UpdateProfile,
    apply_change,
    convert,
)
from engine import flows as flowsvc
from engine.actions import Services, perform
from engine.customers import resolve, tags_of
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.runtime import JOURNEY_WORKFLOW, ActionRequest, JourneyInput
from engine.validate import validate
from engine.worker import build_worker


def new_customer(db_url: str, name: str = "张三", **attributes: Any) -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": uuid.uuid4().hex}, name, attributes)


def customer_row(db_url: str, customer_id: str) -> models.Customer:
    with session_factory(db_url)() as db:
        row = db.get(models.Customer, customer_id)
        assert row is not None
        return row


def change(db_url: str, customer_id: str, config: dict[str, Any]) -> dict[str, Any]:
    with transaction(db_url) as db:
        return apply_change(db, customer_id, ProfileChange.model_validate(config))


# -- config ---------------------------------------------------------------------------------------------------
def test_registered_with_a_palette_label() -> None:
    assert UpdateProfile in NODE_TYPES
    assert UpdateProfile.label == {"zh-CN": "更新客户资料", "en": "Update profile"}
    assert UpdateProfile.describe()["config_schema"]["properties"]["set"]["type"] == "object"


def test_config_accepts_literals_templates_and_typed_values() -> None:
    config = ProfileChange.model_validate({
        "set": {"vip_level": 2, "vip": True, "note": None, "source": "{{ event.payload.channel }}",
                "spent": {"value": "{{ event.payload.amount_fen }}", "type": "int"}, "name": "李四"},
        "increment": {"visits": 1}, "unset": ["trial_ends", "timezone"]})
    assert config.set["vip_level"] == 2 and config.set["vip"] is True


@pytest.mark.parametrize(("config", "message"), [
    ({"set": {"price": 9.9}}, "9.9 is a float"),
    ({"set": {"price": {"value": 9.9, "type": "decimal"}}}, "is a float"),
    ({"set": {"id": "x"}}, "'id' is reserved"),
    ({"set": {"tags": "x"}}, "'tags' is reserved"),
    ({"set": {"days_since_interaction": 3}}, "reserved"),
    ({"set": {"1st": "x"}}, "not a valid name"),
    ({"set": {"_secret": "x"}}, "not a valid name"),
    ({"set": {"a.b": "x"}}, "not a valid name"),
    ({"set": {"x" * 65: "x"}}, "not a valid name"),
    ({"increment": {"name": 1}}, "cannot be incremented"),
    ({"increment": {"visits": 1.5}}, "integer"),
    ({"set": {"a": 1}, "unset": ["a"]}, "both set and unset"),
    ({}, "at least one attribute"),
    ({"set": {"a": {"value": "1", "type": "float"}}}, "type"),
    ({"set": {"a": 1}, "other": 1}, "Extra inputs"),
])
def test_config_errors_name_the_attribute(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ProfileChange.model_validate(config)
    assert message in str(err.value)


def test_bad_templates_are_flow_problems_naming_the_attribute() -> None:
    doc = {"schema": "tideflow/flow@1", "id": "p", "name": "p", "kind": "journey", "settings": {},
           "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}},
                     {"id": "upd", "type": "action.update_profile",
                      "config": {"set": {"ok": "{{ customer.name }}",
                                         "bad": {"value": "{{ customer.name ", "type": "string"},
                                         "unknown": "{{ shop.name }}"}}}],
           "edges": [{"from": "start", "to": "upd"}]}
    problems = {(p.node, p.field) for p in validate(doc).problems}
    assert ("upd", "config.set.bad") in problems and ("upd", "config.set.unknown") in problems
    assert ("upd", "config.set.ok") not in problems


# -- conversions ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("42", "int", 42), (" -3 ", "int", -3), (7, "int", 7),
    ("12.50", "decimal", "12.50"), (5, "decimal", "5"), ("0.3333", "decimal", "0.3333"),
    ("2024-05-01", "date", "2024-05-01"), ("2024-05-01T23:30:00+08:00", "date", "2024-05-01"),
    ("true", "bool", True), ("否", "bool", False), ("0", "bool", False), (True, "bool", True),
    (12, "string", "12"), (False, "string", "false"), ("x", "string", "x"), (None, "int", None),
])
def test_convert(value: Any, kind: Any, expected: Any) -> None:
    assert convert(value, kind, "a") == expected


@pytest.mark.parametrize(("value", "kind"), [
    ("12.0", "int"), ("abc", "int"), (True, "int"), ("NaN", "decimal"), ("Infinity", "decimal"), ("1,5", "decimal"),
    ("2024-13-01", "date"), ("tomorrow", "date"), ("maybe", "bool"),
])
def test_convert_refuses_what_does_not_fit(value: Any, kind: Any) -> None:
    with pytest.raises(ProfileError, match="attribute 'a'"):
        convert(value, kind, "a")


# -- applying -------------------------------------------------------------------------------------------------------
def test_apply_sets_increments_and_unsets(db_url: str) -> None:
    cid = new_customer(db_url, visits=2, trial_ends="2024-01-01", counter="5")
    with transaction(db_url) as db:
        db.get(models.Customer, cid).timezone = "Asia/Shanghai"  # type: ignore[union-attr]
    out = change(db_url, cid, {"set": {"vip_level": 3, "vip": True, "name": "李四", "note": None},
                               "increment": {"visits": 1, "coupons": 2, "counter": 1},
                               "unset": ["trial_ends", "timezone", "never_there"]})
    assert out["set"] == {"vip_level": 3, "vip": True, "name": "李四", "note": None}
    assert out["incremented"] == {"visits": 3, "coupons": 2, "counter": 6}
    row = customer_row(db_url, cid)
    assert row.name == "李四" and row.timezone is None
    assert row.attributes == {"visits": 3, "coupons": 2, "counter": 6, "vip_level": 3, "vip": True, "note": None}


def test_templates_render_to_text_unless_typed(db_url: str) -> None:
    cid = new_customer(db_url)
    context = {"event": {"payload": {"amount_fen": 1990, "channel": "youzan", "birthday": "1990-02-03"}}}
    from engine import expressions

    config = ProfileChange.model_validate({"set": {
        "as_text": "{{ event.payload.amount_fen }}",
        "as_int": {"value": "{{ event.payload.amount_fen }}", "type": "int"},
        "birthday": {"value": "{{ event.payload.birthday }}", "type": "date"},
        "missing": {"value": "{{ event.payload.nope }}", "type": "int"},
        "blank": "{{ event.payload.nope }}", "channel": "来自 {{ event.payload.channel }}"}})
    with transaction(db_url) as db:
        out = apply_change(db, cid, config, lambda s: expressions.render(s, context))
    assert out["empty"] == ["missing"]
    assert customer_row(db_url, cid).attributes == {"as_text": "1990", "as_int": 1990, "birthday": "1990-02-03",
                                                    "blank": "", "channel": "来自 youzan"}


@pytest.mark.parametrize(("config", "message"), [
    ({"increment": {"note": 1}}, "holds 'hello', not a whole number"),
    ({"set": {"timezone": "Mars/Olympus"}}, "not an IANA time zone"),
    ({"set": {"name": 3}}, "must be text"),
    ({"set": {"x": "y" * 2001}}, "limit is 2000"),
])
def test_apply_errors_change_nothing(db_url: str, config: dict[str, Any], message: str) -> None:
    cid = new_customer(db_url, note="hello")
    with pytest.raises(ProfileError, match=message):
        change(db_url, cid, config)
    assert customer_row(db_url, cid).attributes == {"note": "hello"}


def test_apply_follows_merges_and_refuses_unknown_customers(db_url: str) -> None:
    with transaction(db_url) as db:
        old = resolve(db, {"phone": "13800138000"}, "张三")
        new = resolve(db, {"email": "z@example.com"})
        survivor = resolve(db, {"phone": "13800138000", "email": "z@example.com"})
    assert survivor == old
    out = change(db_url, new, {"set": {"vip": True}})
    assert out["customer_id"] == old and customer_row(db_url, old).attributes["vip"] is True
    with pytest.raises(LookupError), transaction(db_url) as db:
        apply_change(db, "c_nope", ProfileChange.model_validate({"set": {"a": 1}}))


# -- the node -------------------------------------------------------------------------------------------------------
def request(cid: str | None, config: dict[str, Any], key: str | None = None, **extra: Any) -> ActionRequest:
    return ActionRequest(key=key or f"journey/p/{cid}/upd/1", workflow_id=f"journey/p/{cid}", flow_id="p", version=1,
                         node_id="upd", node_type="action.update_profile", config=config, customer_id=cid, **extra)


def test_the_action_runs_once_per_key(db_url: str) -> None:
    cid = new_customer(db_url, visits=0)
    services = Services(database_url=db_url)
    req = request(cid, {"increment": {"visits": 1}, "set": {"src": "{{ event.payload.channel }}"}},
                  event={"payload": {"channel": "wecom"}})
    first = perform(UpdateProfile, req, services)
    again = perform(UpdateProfile, req, services)
    assert first == again and first["detail"] == {"set": ["src"], "incremented": ["visits"], "unset": [],
                                                  "empty": []}
    assert "values" not in first["detail"]  # values stay out of workflow history
    assert customer_row(db_url, cid).attributes == {"visits": 1, "src": "wecom"}


def test_the_action_fails_permanently_on_a_bad_value(db_url: str) -> None:
    from engine.actions import ActionFailed

    cid = new_customer(db_url)
    req = request(cid, {"set": {"n": {"value": "{{ event.payload.x }}", "type": "int"}}},
                  event={"payload": {"x": "abc"}})
    with pytest.raises(ActionFailed, match="node 'upd': attribute 'n': 'abc' is not a whole number"):
        perform(UpdateProfile, req, Services(database_url=db_url))
    with session_factory(db_url)() as db:
        assert db.scalar(select(models.LedgerEntry).where(models.LedgerEntry.key == req.key)) is None


def test_the_action_shows_values_in_previews_and_skips_without_customer(db_url: str) -> None:
    cid = new_customer(db_url)
    preview = perform(UpdateProfile, request(cid, {"set": {"a": 1}}, simulate=True), Services(database_url=db_url))
    assert preview["detail"]["values"] == {"a": 1}
    nobody = perform(UpdateProfile, request(None, {"set": {"a": 1}}, key="k/none"), Services(database_url=db_url))
    assert nobody["detail"] == {"skipped": "no customer"}


JOURNEY: dict[str, Any] = {
    "schema": "tideflow/flow@1", "id": "profile-journey", "name": "资料更新", "kind": "journey", "settings": {},
    "nodes": [
        {"id": "start", "type": "trigger.event", "config": {"event": "order.paid"}},
        {"id": "upd", "type": "action.update_profile", "config": {
            "set": {"last_channel": "{{ event.payload.channel }}",
                    "last_amount_fen": {"value": "{{ event.payload.amount_fen }}", "type": "int"}},
            "increment": {"big_orders": 1}}},
        {"id": "big", "type": "logic.condition",
         "config": {"expr": "customer.big_orders == 1 and customer.last_amount_fen > 10000"}},
        {"id": "tag", "type": "action.tag", "config": {"add": ["大单客"]}},
    ],
    "edges": [{"from": "start", "to": "upd"}, {"from": "upd", "to": "big"},
              {"from": "big", "port": "yes", "to": "tag"}],
}


async def test_update_profile_in_a_journey(time_env: Any, db_url: str) -> None:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, JOURNEY, "test")
        compiled = dict(flowsvc.publish(db, JOURNEY["id"], "test").compiled)
    cid = new_customer(db_url)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    entry = {"id": f"t:{cid}", "type": "order.paid", "payload": {"amount_fen": 19900, "channel": "youzan"}}
    async with build_worker(time_env.client, queue, db_url):
        handle = await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid, entry_event=entry),
            id=f"journey/profile-journey/{cid}", task_queue=queue)
        result = await handle.result()
    assert result["status"] == "completed"
    assert ("big", "yes") in [(s["node"], s.get("port")) for s in result["timeline"] if s["what"] == "step"]
    assert customer_row(db_url, cid).attributes == {"last_channel": "youzan", "last_amount_fen": 19900,
                                                    "big_orders": 1}
    with session_factory(db_url)() as db:
        assert tags_of(db, cid) == ["大单客"]
