"""The event examples in docs/events.md and README.md are real: each is a valid event; order and refund
payloads are the canonical shapes; the refund.requested example, stored, opens one refund ticket, and sent
twice still one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.canonical import CanonicalOrder, CanonicalRefund
from engine.db import models
from engine.db.session import session_factory
from engine.events import EventIn, store

ROOT = Path(__file__).resolve().parents[2]


def _doc_examples() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def _readme_refund() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = next(b for b in re.findall(r"-d '(\{.*?\})'", text, re.S) if "refund.requested" in b)
    return dict(json.loads(body))


def test_every_example_is_a_valid_event_with_the_canonical_payload() -> None:
    examples = _doc_examples()
    assert [e["type"] for e in examples] == ["wecom.contact_added", "order.paid", "refund.requested",
                                             "custom.viewed_live"]
    for example in [*examples, _readme_refund()]:
        event = EventIn.model_validate(example)
        if event.type.startswith("order."):
            assert CanonicalOrder.model_validate(event.payload).status == "paid"
        if event.type.startswith("refund."):
            assert CanonicalRefund.model_validate(event.payload).status == "requested"


def test_the_refund_example_opens_one_refund_ticket(db_url: str) -> None:
    example = next(e for e in _doc_examples() if e["type"] == "refund.requested")
    for _ in range(2):
        store(EventIn.model_validate(example), db_url)
    store(EventIn.model_validate({**_readme_refund(), "id": "readme-refund"}), db_url)  # the same refund again
    with session_factory(db_url)() as db:
        tickets = db.scalars(select(models.Ticket).where(models.Ticket.refund_id == "R20261125009")).all()
    assert len(tickets) == 1
    assert tickets[0].type_key == "refund" and tickets[0].amount_fen == 12900 and "受潮" in tickets[0].description
