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
