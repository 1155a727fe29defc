"""Which configured connector a message channel goes out through."""

from __future__ import annotations

from engine import connectors
from engine.db.session import session_factory, transaction

SECRET = {"secret": "s" * 32}


def test_an_inbound_only_connector_is_passed_over_for_delivery(db_url: str) -> None:
    with transaction(db_url) as db:
        connectors.save(db, "a-inbound", "webhook", "ERP pushes", {}, SECRET)
        connectors.save(db, "b-outbound", "webhook", "CRM receiver", {"url": "http://127.0.0.1:9/x"}, SECRET)
        connectors.save(db, "c-disabled", "webhook", "old", {"url": "http://127.0.0.1:9/y"}, SECRET, enabled=False)
    with session_factory(db_url)() as db:
        chosen = connectors.for_channel(db, "webhook")
        assert chosen is not None and chosen.id == "b-outbound"
        assert connectors.for_channel(db, "fax") is None


def test_no_connector_can_deliver_gives_none(db_url: str) -> None:
    with transaction(db_url) as db:
        connectors.save(db, "a-inbound", "webhook", "ERP pushes", {}, SECRET)
    with session_factory(db_url)() as db:
        assert connectors.for_channel(db, "webhook") is None
