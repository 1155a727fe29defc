"""Replies go where the customer can be reached, and say what really happened: a refund ticket answers over
the customer's own channel (not always WeCom), a reply over a channel that is not set up (or to a customer
without an address on it) is recorded as skipped — never "sent" — and one over a working SMS gateway (a real
HTTP server on loopback) is sent. Reopening a resolved ticket puts its resolved time outside the SLA and opens
a reply cycle; an agent coming online gets the tickets queued meanwhile."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from activities.messaging import reach
from activities.tickets import service
from engine import connectors
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.engine.ticketkit import agent, group, user

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)


class Gateway(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        type(self).received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        body = b'{"code": 0, "msgid": "sms-1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/send"
    server.shutdown()
    server.server_close()


def _refund(db_url: str, refund_id: str, identities: dict[str, str]) -> models.Ticket:
    ingest.store(ingest.EventIn(id=f"rf-{refund_id}", type="refund.requested", source="youzan", customer=identities,
                                occurred_at=NOW, payload={"refund_id": refund_id, "order_id": "YZ-1", "shop": "s1",
                                                          "channel": "youzan", "amount_fen": 5000}), db_url)
    with session_factory(db_url)() as db:
        found = db.scalar(select(models.Ticket).where(models.Ticket.refund_id == refund_id))
        assert found is not None
        db.expunge(found)
        return found


def test_a_refund_ticket_answers_over_the_customers_own_channel(db_url: str, gateway: str) -> None:
    # nothing set up: the customer has a phone, so SMS is their channel — and the console will warn
    by_phone = _refund(db_url, "R-1", {"phone": "13800138000"})
    assert by_phone.channel == "sms"
    with session_factory(db_url)() as db:
        assert reach.reach(db, by_phone.customer_id, by_phone.channel).reason == "not_configured"
    with transaction(db_url) as db:
        connectors.save(db, "gw", "sms", "短信网关", {"url": gateway, "verify_tls": False}, {"api_key": "k" * 20})
    with session_factory(db_url)() as db:
        assert reach.reach(db, by_phone.customer_id, "sms").ok
        assert reach.reach(db, by_phone.customer_id, "wecom").reason == "not_configured"
        assert reach.reach(db, by_phone.customer_id, "email").reason == "not_configured"
        assert reach.reach(db, None, "sms").reason == "no_customer"
    # a customer with a WeCom contact but no WeCom app set up: SMS (set up) answers them, not WeCom
    both = _refund(db_url, "R-2", {"phone": "13900139000", "wecom_external_userid": "wmEXT-2"})
    assert both.channel == "sms"
    # nobody reachable at all
    with transaction(db_url) as db:
        nobody = resolve(db, {"external_id": "anon-1"}, "匿名", {})
        assert reach.customer_channel(db, nobody) == reach.NO_CHANNEL
        assert reach.reach(db, nobody, reach.NO_CHANNEL).reason == "no_channel"


def _reply(db_url: str, ticket_id: int, text: str) -> str:
    with transaction(db_url) as db:
        ticket = service.get_ticket(db, ticket_id, lock=True)
        event_id = service.reply(db, ticket, text, NOW, "user:1").id
    return service.deliver_reply(db_url, ticket_id, event_id)


def test_a_reply_says_skipped_when_it_cannot_reach_the_customer_and_sent_when_it_did(db_url: str,
                                                                                   gateway: str) -> None:
    ticket = _refund(db_url, "R-3", {"phone": "13700137000"})
    assert _reply(db_url, ticket.id, "您好，已收到") == "skipped: channel not configured"
    with transaction(db_url) as db:
        connectors.save(db, "gw", "sms", "短信网关", {"url": gateway, "verify_tls": False}, {"api_key": "k" * 20})
    # a customer known only by email, on the (now set up) SMS channel: no phone to send to
    with transaction(db_url) as db:
        mailer = resolve(db, {"email": "li@example.com"}, "李", {})
        other, _ = service.create_ticket(db, type_key="refund", subject="x", now=NOW, customer_id=mailer,
                                         channel="sms", check_fields=False)
        other_id = other.id
    assert _reply(db_url, other_id, "第二条") == "skipped: no address"
    assert _reply(db_url, ticket.id, "退款已原路退回") == "sent"
    assert [r["content"] for r in Gateway.received] == ["退款已原路退回"]
    assert Gateway.received[0]["phone"] == "+8613700137000"
    with session_factory(db_url)() as db:
        replies = db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket.id,
                                                              models.TicketEvent.kind == "reply")
                             .order_by(models.TicketEvent.id)).all()
        assert [r.data["delivery"] for r in replies] == ["skipped: channel not configured", "sent"]
        statuses = db.scalars(select(models.Message.status).where(models.Message.customer_id == ticket.customer_id)
                              .order_by(models.Message.id)).all()
        assert statuses == ["skipped: channel not configured", "sent"]
    # delivering the same reply again sends nothing more
    assert service.deliver_reply(db_url, ticket.id, replies[-1].id) == "sent"
    assert len(Gateway.received) == 1


def test_reopening_a_resolved_ticket_keeps_the_resolved_time_out_of_its_sla(db_url: str) -> None:
    group(db_url, "g1", calendar={"timezone": "UTC", "working_days": [1, 2, 3, 4, 5, 6, 7],
                                  "working_hours": [{"start": "00:00", "end": "24:00"}]})
    with transaction(db_url) as db:
        db.merge(models.TicketType(key="t", name="t", fields=[], flow_id=None, default_group="g1",
                                   default_priority="P3", auto_events=[]))
    with transaction(db_url) as db:
        ticket, _ = service.create_ticket(db, type_key="t", subject="坏了", group="g1", now=NOW, customer_id=None)
        service.start_sla(db, ticket, {"targets": {"P3": {"next_response": "PT2H", "resolution": "PT8H"}},
                                       "warn_before": None}, NOW)
        ticket.first_response_at = NOW + timedelta(hours=1)
        service.set_status(db, ticket, "resolved", NOW + timedelta(hours=2), "user:1")
        service.set_status(db, ticket, "open", NOW + timedelta(hours=26), "user:1", "客户说还没好")
        tid = ticket.id
    with session_factory(db_url)() as db:
        ticket = service.get_ticket(db, tid)
        due = {p["key"]: p["due"] for p in service.view(ticket)["sla"]["checkpoints"]}
        statuses = [e.data for e in db.scalars(select(models.TicketEvent).where(
            models.TicketEvent.ticket_id == tid, models.TicketEvent.kind == "status"))]
    # 2 h used before the resolution, 24 h resolved (not counted): 6 h left from the reopening
    assert due["resolution:breach"] == (NOW + timedelta(hours=32)).isoformat()
    # the customer waits for an answer again: a next-response cycle from the reopening
    assert due["next_response#1:breach"] == (NOW + timedelta(hours=28)).isoformat()
    assert ticket.resolved_at is None and ticket.status == "open"
    assert statuses[-1]["reopened"] is True


def test_an_agent_coming_online_gets_the_tickets_queued_while_everyone_was_away(db_url: str) -> None:
    amy, ben = user(db_url, "amy"), user(db_url, "ben")
    group(db_url, "vip", strategy="least_loaded", capacity=2)
    agent(db_url, amy, ["vip"], availability="away")
    agent(db_url, ben, ["other"], availability="online")
    with transaction(db_url) as db:
        db.merge(models.TicketType(key="t", name="t", fields=[], flow_id=None, default_group="vip",
                                   default_priority="P3", auto_events=[]))
    ids = []
    with transaction(db_url) as db:
        for n, priority in enumerate(("P3", "P1", "P3")):
            ticket, _ = service.create_ticket(db, type_key="t", subject=f"#{n}", group="vip", priority=priority,
                                              now=NOW + timedelta(minutes=n))
            assert service.assign(db, ticket, NOW).user_id is None  # queued: nobody online
            ids.append(ticket.id)
        assert service.offer_queued(db, amy, NOW) == []  # still away: nothing
    with transaction(db_url) as db:
        row = db.get(models.Agent, amy)
        assert row is not None
        row.availability = "online"
    with transaction(db_url) as db:
        offered = service.offer_queued(db, amy, NOW + timedelta(hours=1))
    # the most urgent first, then the oldest; amy's capacity (2) stops the third
    assert offered == [ids[1], ids[0]]
    with session_factory(db_url)() as db:
        tickets = {t.id: t for t in db.scalars(select(models.Ticket))}
        assert tickets[ids[1]].assignee_id == amy and tickets[ids[0]].assignee_id == amy
        assert tickets[ids[2]].assignee_id is None
        events = db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ids[1],
                                                             models.TicketEvent.kind == "assigned")).all()
        assert [e.actor for e in events] == ["reoffer"]
