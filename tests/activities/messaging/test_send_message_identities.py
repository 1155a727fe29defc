"""A send through a connector: the customer's identities are read once, in the session the send reads the
customer in (before it reserves the message; not in a session of the delivery's own after that), and reach the
platform with the message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from activities.messaging.send_message import SendMessage
from engine import connectors
from engine.actions import Services, perform
from engine.customers import resolve
from engine.db.session import get_engine, transaction
from engine.runtime import ActionRequest
from tests.connectors.loopback import LoopbackServer, Reply, Request


class Receiver(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def serve(self, request: Request) -> Reply:
        self.bodies.append(request.json())
        return Reply(body={"id": "r-1"})


@pytest.fixture
def receiver(db_url: str) -> Iterator[Receiver]:
    with Receiver() as server:
        with transaction(db_url) as db:
            connectors.save(db, "crm", "webhook", "CRM receiver", {"url": f"{server.url}/m"}, {"secret": "s" * 32})
        yield server


def test_the_identities_go_out_with_the_message_read_once(db_url: str, receiver: Receiver) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13800138000", "external_id": "crm-7"}, "李雷")
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM identities" in statement:
            seen.append("identities")
        elif statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            seen.append("reserve")

    request = ActionRequest(key=f"journey/f/{cid}/send/1", workflow_id=f"journey/f/{cid}", flow_id="f", version=1,
                            node_id="send", node_type="action.send_message", customer_id=cid,
                            config={"channel": "webhook", "template": "你好 {{ customer.name }}",
                                    "category": "transactional"})
    event.listen(get_engine(db_url), "before_cursor_execute", record)
    try:
        result = perform(SendMessage, request, Services(database_url=db_url))
    finally:
        event.remove(get_engine(db_url), "before_cursor_execute", record)
    assert result["detail"]["status"] == "sent" and result["detail"]["provider_id"] == "r-1"
    (body,) = receiver.bodies
    assert body["content"] == "你好 李雷" and body["identities"] == {"phone": "+8613800138000", "external_id": "crm-7"}
    # read once, with the customer, before the reserving transaction (no session of the delivery's own after it)
    assert seen == ["identities", "reserve"]
