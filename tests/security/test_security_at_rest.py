"""Personal data that sending does not need is not kept in clear at rest (issue 18, item 6).

What was chosen (docs/security.md, "Data at rest"): Temporal's payloads — customer snapshots, event
payloads, rendered messages — are encrypted by every client of this instance (engine/payload_codec.py),
so temporal.db holds ciphertext; tideflow.db keeps identities in clear because sending and identity
resolution need them (its file is 0600 in a 0700 directory), and the message archive keeps masked text.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from temporalio.client import Client

from engine import payload_codec
from engine.db import models
from engine.db.session import session_factory
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, publish

PHONE = "13912345678"


def _payload_bytes(node: Any) -> bytes:
    """Every payload's data in a history (JSON form: base64), decoded and joined: what the database keeps."""
    if isinstance(node, dict):
        own = base64.b64decode(node["data"]) if isinstance(node.get("data"), str) else b""
        return own + b"".join(_payload_bytes(v) for v in node.values())
    if isinstance(node, list):
        return b"".join(_payload_bytes(v) for v in node)
    return b""


async def test_temporal_stores_journey_payloads_encrypted(time_env: Any, db_url: str) -> None:
    # no waits: a client made here does not drive the time-skipping server's clock
    nodes = [("start", "trigger.event", {"event": "wecom.contact_added"}),
             ("hello", "action.send_message", {"template": "你好 {{ customer.name }}"}),
             ("check", "logic.condition", {"expr": "customer.mobile != ''"})]
    compiled = publish(db_url, flow("hello", nodes, [("start", "out", "hello"), ("hello", "out", "check")]))
    cid = customer(db_url, "韩梅梅", orders_count=2, mobile=PHONE)
    plain: Client = time_env.client
    encrypted = Client(plain.service_client, namespace=plain.namespace, data_converter=payload_codec.data_converter())
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with build_worker(encrypted, queue, db_url):
        handle = await encrypted.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid, entry_event={
                "id": "e1", "type": "wecom.contact_added", "payload": {"phone": PHONE, "note": "韩梅梅 来电"}}),
            id=f"journey/hello/{cid}", task_queue=queue)
        result = await handle.result()
    assert result["status"] == "completed"  # the worker read its own ciphertext
    stored = _payload_bytes(json.loads((await plain.get_workflow_handle(handle.id).fetch_history()).to_json()))
    assert stored, "the history holds payloads"
    assert PHONE.encode() not in stored and "韩梅梅".encode() not in stored and b"\\u97e9" not in stored
    with session_factory(db_url)() as db:
        sent = [m.content for m in db.query(models.Message).filter_by(customer_id=cid)]
    assert sent == ["你好 韩梅梅"]  # what sending needs is there


async def test_unencrypted_payloads_are_still_read() -> None:
    from temporalio.api.common.v1 import Payload

    codec = payload_codec.EncryptionCodec(payload_codec.derive_key("k" * 44))
    old = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    assert await codec.decode([old]) == [old]
    [sealed] = await codec.encode([old])
    assert b'"a"' not in sealed.data and await codec.decode([sealed]) == [old]
