"""The event-type catalogue the pickers offer: built-in types, the types installed plugins declare (entry
point group ``tideflow.event_types``, here the example lottery plugin's, installed by the Makefile), and the
types already seen in the events table — counted over the newest events, with their sources."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest
from pydantic import ValidationError

from engine import event_types
from engine.db.session import session_factory
from engine.event_types import EVENT_TYPES, SeenType, catalogue, is_known, plugin_event_types
from engine.events import EventIn, seen_types, store


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    plugin_event_types.cache_clear()
    yield
    plugin_event_types.cache_clear()


def test_the_installed_example_plugin_declares_its_event_type(fresh_plugins: None) -> None:
    declared = plugin_event_types()
    assert declared["lottery.prize_claimed"] == ("tideflow-plugin-lottery",
                                                 {"zh-CN": "领取奖品", "en": "Lottery prize claimed"})
    assert is_known("lottery.prize_claimed")  # POST /api/events accepts it …
    EventIn.model_validate({"id": "1", "type": "lottery.prize_claimed", "customer": {"phone": "13800138000"}})
    with pytest.raises(ValidationError, match=r"unknown event type 'lottery\.prize_claimd'.*lottery\.prize_claimed"):
        EventIn.model_validate({"id": "1", "type": "lottery.prize_claimd", "customer": {"phone": "13800138000"}})
    entry = next(e for e in catalogue() if e.type == "lottery.prize_claimed")
    assert (entry.origin, entry.plugin, entry.label("zh-CN")) == ("plugin", "tideflow-plugin-lottery", "领取奖品")


def test_a_broken_plugin_declaration_is_left_out_not_fatal(fresh_plugins: None, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    module = types.ModuleType("tf_test_bad_events")
    module.GOOD = {"acme.checked_in": {"zh-CN": "签到", "en": "Checked in"}}  # type: ignore[attr-defined]
    module.CLASH = {"order.paid": {"en": "mine"}}  # type: ignore[attr-defined]
    module.NAME = {"Not A Type": {"en": "x"}}  # type: ignore[attr-defined]
    module.LIST = ["acme.x"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    group = event_types.PLUGIN_GROUP
    points = [EntryPoint(name, f"{module.__name__}:{name.upper()}", group)
              for name in ("good", "clash", "name", "list")]
    monkeypatch.setattr(event_types, "entry_points", lambda group: points if group == event_types.PLUGIN_GROUP else [])
    declared = plugin_event_types()
    assert set(declared) == {"acme.checked_in"}
    assert "order.paid" in caplog.text and "Not A Type" in caplog.text and "not a dict" in caplog.text


def test_seen_types_join_the_catalogue_busiest_first(db_url: str, fresh_plugins: None) -> None:
    for i in range(3):
        store(EventIn.model_validate({"id": f"v{i}", "type": "custom.viewed_live", "source": "live-room",
                                      "customer": {"phone": "13800138000"}}), db_url)
    store(EventIn.model_validate({"id": "p1", "type": "order.paid", "source": "youzan",
                                  "customer": {"phone": "13800138001"}, "payload": {}}), db_url)
    store(EventIn.model_validate({"id": "p2", "type": "order.paid", "source": "api",
                                  "customer": {"phone": "13800138001"}, "payload": {}}), db_url)
    with session_factory(db_url)() as db:
        seen = seen_types(db)
        assert seen["custom.viewed_live"].count == 3 and seen["custom.viewed_live"].sources == ("live-room",)
        assert seen["order.paid"].count == 2 and seen["order.paid"].sources == ("api", "youzan")
        assert seen["order.paid"].last is not None and seen["order.paid"].last.tzinfo is not None
        only_newest = seen_types(db, window=2)  # counts the newest events only; every type is still listed
        assert only_newest["order.paid"].count == 2 and only_newest["custom.viewed_live"].count == 0
    entries = catalogue(seen, {"order.paid": ("youzan", "jd")})
    by_type = {e.type: e for e in entries}
    assert set(EVENT_TYPES) <= set(by_type)
    assert by_type["custom.viewed_live"].origin == "custom" and by_type["custom.viewed_live"].seen.count == 3
    assert by_type["order.paid"].producers == ("youzan", "jd") and by_type["order.paid"].seen.count == 2
    orders = [e.type for e in entries if e.family == "order"]
    assert orders[0] == "order.paid"  # the busiest of its family first
    assert entries[-1].type == "custom.viewed_live"  # built-in, then plugin, then seen custom types
    # a type in the table that is no longer known (a removed plugin) is not offered
    assert "gone.type" not in {e.type for e in catalogue({"gone.type": SeenType(5)})}
