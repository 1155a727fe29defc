"""settlement.payout through the engine's action path: a payout file and a webhook instruction (a real HTTP
server on loopback), idempotent per key and per statement."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from activities.settlement.nodes import SettlementPayout
from activities.settlement.periods import Period
from activities.settlement.runs import decide, settle, submit_run
from activities.settlement.settlement_plan import load_settlement_plan
from designer.i18n import translate
from engine.actions import Services, failure_of, perform
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.interpreter import carried_reason
from engine.runtime import ActionRequest
from engine.settings import get_settings
from tests.activities.settlement.settlement_kit import STORE_PLAN, order


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"key": self.headers["Idempotency-Key"], "body": json.loads(body)})
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/payouts", received
    server.shutdown()
    server.server_close()


def _request(run_id: int, url: str, key: str) -> ActionRequest:
    return ActionRequest(key=key, workflow_id="run/test", flow_id="store-monthly-settlement", version=1,
                         node_id="payout", node_type="settlement.payout",
                         config={"method": "webhook", "webhook_url": url}, customer_id=None,
                         variables={"settlement_run_id": run_id})


def test_payout_writes_a_file_and_posts_once(db_url: str, receiver: tuple[str, list[dict[str, Any]]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = receiver
    # the payout service is internal: the operator admits it on purpose (the SSRF guard refuses it otherwise,
    # tests/security/test_security_ssrf.py)
    monkeypatch.setenv("TIDEFLOW_OUTBOUND_ALLOW", "127.0.0.1/32")
    get_settings.cache_clear()
    with transaction(db_url) as db:
        order(db, "o1", 100000, "2026-10-03 10:00", shop="S001")
        order(db, "o2", 100000, "2026-10-03 10:00", shop="S002")
        run = submit_run(db, settle(db, load_settlement_plan(STORE_PLAN), Period(date(2026, 10, 1),
                                                                                 date(2026, 10, 31))))
        for statement in db.scalars(select(models.Statement).where(models.Statement.run_id == run.id)):
            decide(db, statement.id, "approved", "", "finance")
        run_id = run.id
    services = Services(database_url=db_url)
    first = perform(SettlementPayout, _request(run_id, url, "run/test/payout/1"), services)
    again = perform(SettlementPayout, _request(run_id, url, "run/test/payout/1"), services)   # a retry
    assert first == again and first["port"] == "out"
    assert len(received) == 1 and received[0]["key"] == f"settlement-run/{run_id}"
    assert {(p["party"], p["amount"]) for p in received[0]["body"]["payouts"]} == {("S001", "50.00"),
                                                                                  ("S002", "30.00")}
    # a second run of the node (a re-run of the period) instructs the same payouts, no new ones
    perform(SettlementPayout, _request(run_id, url, "run/again/payout/1"), services)
    assert received[1]["body"] == received[0]["body"] and received[1]["key"] == received[0]["key"]
    with session_factory(db_url)() as db:
        assert db.scalar(select(models.SettlementRun.status)) == "paid"
        assert len(db.scalars(select(models.Payout)).all()) == 2
    files = list(get_settings().data_dir.joinpath("payouts").glob("*.csv"))
    assert len(files) == 1 and "statement/" in files[0].read_text(encoding="utf-8")


def test_webhook_without_url_fails_with_the_fix(db_url: str) -> None:
    request = _request(1, "", "k")
    request.config = {"method": "webhook"}
    with pytest.raises(Exception, match="needs webhook_url"):
        perform(SettlementPayout, request, Services(database_url=db_url))


def test_a_payout_webhook_that_answers_an_error_is_retried_and_says_why_in_each_language(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payout service answering 503: the action fails to be retried, its reason a Msg the failure list shows in
    the reader's language (engine.actions.failure_of → carried_reason), the English as before."""
    class Busy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TIDEFLOW_OUTBOUND_ALLOW", "127.0.0.1/32")
    get_settings.cache_clear()
    try:
        with transaction(db_url) as db:
            order(db, "o1", 100000, "2026-10-03 10:00", shop="S001")
            run = submit_run(db, settle(db, load_settlement_plan(STORE_PLAN), Period(date(2026, 10, 1),
                                                                                     date(2026, 10, 31))))
            for statement in db.scalars(select(models.Statement).where(models.Statement.run_id == run.id)):
                decide(db, statement.id, "approved", "", "finance")
            run_id = run.id
        with pytest.raises(RuntimeError) as busy:
            perform(SettlementPayout, _request(run_id, f"http://127.0.0.1:{server.server_port}/payouts",
                                               "run/test/payout/1"), Services(database_url=db_url))
    finally:
        server.shutdown()
        server.server_close()
    failure = failure_of(busy.value)
    reason = carried_reason(failure)
    assert failure.non_retryable is False and failure.message == "RuntimeError: payout webhook answered 503"
    assert reason is not None and translate(reason, "zh-CN") == "RuntimeError：付款 Webhook 返回 503"
