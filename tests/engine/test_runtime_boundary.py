"""The dataclasses that cross the workflow ↔ activity boundary (engine/runtime.py) carry evaluated annotations:
Temporal's payload converter reads their type hints on every decode, and string annotations (``from __future__
import annotations``) are compiled and evaluated anew each time, on the paced path of every event
(docs/performance.md, eighth round)."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.converter import DataConverter

from engine import runtime

BOUNDARY = [runtime.JourneyInput, runtime.ActionRequest, runtime.Checkpoint, runtime.BroadcastInput]


@pytest.mark.parametrize("cls", BOUNDARY, ids=lambda c: c.__name__)
def test_annotations_are_types_not_strings(cls: type) -> None:
    strings = {name: hint for name, hint in cls.__annotations__.items() if isinstance(hint, str)}
    assert not strings, f"{cls.__name__} has string annotations {strings}: drop `from __future__ import " \
                        "annotations` from engine/runtime.py"


def test_an_action_request_round_trips_through_the_payload_converter() -> None:
    request = runtime.ActionRequest(
        key="wf/notify/1", workflow_id="wf", flow_id="f", version=3, node_id="notify",
        node_type="action.send_message", config={"channel": "webhook", "template": "{{ event.payload.marker }}"},
        customer_id="c1", variables={"n": 1}, event={"id": "e1", "payload": {"marker": "m"}},
        checkpoint={"continues": [], "status": "completed", "stats": [["notify", "entered", None, 1]]},
        measure_from="2026-12-07T23:00:00+00:00")
    converter = DataConverter.default.payload_converter
    [back] = converter.from_payloads(converter.to_payloads([request]), [runtime.ActionRequest])
    assert back == request
    assert dataclasses.asdict(back)["checkpoint"]["stats"] == [["notify", "entered", None, 1]]


def test_fields_of_gives_the_dataclass_payload_without_copying() -> None:
    """The workflow schedules its actions with ``fields_of(request)``: the payload must be byte for byte the
    dataclass's (histories and running journeys see the same input), and nothing is deep-copied on the way."""
    event = {"id": "e1", "payload": {"marker": "m", "items": [{"sku": "a", "qty": 1}]}}
    request = runtime.ActionRequest(
        key="wf/notify/1", workflow_id="wf", flow_id="f", version=3, node_id="notify",
        node_type="action.send_message", config={"channel": "webhook"}, customer_id=None, event=event,
        checkpoint={"continues": ["later"], "status": "completed", "stats": [["notify", "entered", "", 1]]})
    checkpoint = runtime.Checkpoint(key="ckpt/r/1", workflow_id="wf", flow_id="f", version=3, customer_id="c1",
                                    status="waiting", node="wait", stats=[["wait", "waiting", "", 1]])
    converter = DataConverter.default.payload_converter
    for data in (request, checkpoint):
        [as_dataclass] = converter.to_payloads([data])
        [as_fields] = converter.to_payloads([runtime.fields_of(data)])
        assert as_fields == as_dataclass
    assert runtime.fields_of(request)["event"] is event
