"""The failed journeys: the list filters by flow, node, words of the reason, customer and day; the journey page
says the node, the error and the attempts; Give up works without the engine (the journey stays on record as
cancelled, audited), Retry needs it and says so. Retry itself runs on the real Temporal dev server in
tests/engine/test_journey_failures.py and in the browser test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import flows as flowsvc
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.session import session_factory, transaction
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app
from tests.engine.flowkit import WELCOME

FAILED_AT = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> Any:
    add_users(db_url)
    with transaction(db_url) as db:
        flowsvc.save_draft(db, WELCOME, "marketer")
        flowsvc.publish(db, "welcome", "marketer")
        db.add(models.Customer(id="c1", name="赵六", attributes={}))
        for n, (node, error, attempts) in enumerate([
                ("hello", "POST http://crm.example/x answered HTTP 503: 'maintenance' (will retry)", 5),
                ("bought", "node 'bought': cannot evaluate customer.orders_count > 0: too costly", 1),
                ("hello", "template of node 'hello': division by zero", 1)]):
            wid = f"journey/welcome/c{n + 1}"
            db.add(models.Journey(workflow_id=wid, flow_id="welcome", version=1, customer_id=f"c{n + 1}",
                                  status="failed", current_node=node, started_at=FAILED_AT - timedelta(days=n + 1),
                                  ended_at=FAILED_AT - timedelta(days=n)))
            db.add(JourneyFailure(workflow_id=wid, run_id=f"r{n}", flow_id="welcome", node_id=node,
                                  node_type="action.send_message" if node == "hello" else None,
                                  kind="action" if node == "hello" else "logic", error=error, attempts=attempts,
                                  failed_at=FAILED_AT - timedelta(days=n)))
        db.add(models.Journey(workflow_id="journey/welcome/c9", flow_id="welcome", version=1, customer_id="c9",
                              status="waiting", current_node="wait1"))
    return build_app(db_url)


def test_the_failed_list_filters_and_says_why(app: Any) -> None:
    marketer = Browser(app, "marketer")
    page = marketer.get("/journeys/failures")
    assert page.status_code == 200 and "共 3 个失败的旅程" in page.text
    assert "HTTP 503" in page.text and "5 次" in page.text and "division by zero" in page.text
    assert 'data-journey="journey/welcome/c9"' not in page.text  # not failed
    by_node = marketer.get("/journeys/failures", params={"node": "hello", "q": "503"}).text
    assert "共 1 个失败的旅程" in by_node and 'data-journey="journey/welcome/c1"' in by_node
    by_day = marketer.get("/journeys/failures", params={"from": "2026-12-04", "to": "2026-12-04"}).text
    assert 'data-journey="journey/welcome/c2"' in by_day and "共 1 个" in by_day
    assert marketer.get("/journeys/failures", params={"from": "12/04"}).status_code == 200  # said, not crashed
    assert "YYYY-MM-DD" in marketer.get("/journeys/failures", params={"from": "12/04"}).text
    assert "查看失败原因 (3)" in marketer.get("/journeys").text
    assert "3 failed journeys" in Browser(app, "marketer", "en").get("/flows").text
    api = marketer.get("/api/journeys/failed", params={"flow": "welcome", "node": "bought"}).json()
    assert api["total"] == 1 and api["journeys"][0]["failure"]["error"].endswith("too costly")
    assert api["journeys"][0]["failure"]["attempts"] == 1


def test_the_journey_page_shows_the_reason_and_gives_up_without_the_engine(app: Any, db_url: str) -> None:
    marketer = Browser(app, "marketer")
    page = marketer.get("/journeys/journey/welcome/c1").text
    assert 'id="failure-node"' in page and "hello" in page and "HTTP 503" in page and "5 次" in page
    assert "重试" in page and "放弃" in page
    one = marketer.get("/api/journeys/journey/welcome/c1").json()
    assert one["failure"]["node"] == "hello" and one["trouble"] is None
    # retry needs the engine, and says so (no engine in this app)
    r = marketer.post_form("/journeys/retry", {"journey_id": "journey/welcome/c1", "back": "/journeys/failures"})
    assert r.status_code == 503 and "Temporal" in r.text
    # giving up does not: it stays on record, cancelled, with its reason
    r = marketer.post_form("/journeys/cancel", {"journey_id": "journey/welcome/c1", "back": "/journeys/failures"})
    assert r.status_code == 303 and "notice=cancelled" in r.headers["location"]
    with session_factory(db_url)() as db:
        journey = db.get(models.Journey, "journey/welcome/c1")
        assert journey is not None and journey.status == "cancelled"
    after = marketer.get("/journeys/journey/welcome/c1").text
    assert "已取消" in after and "HTTP 503" in after  # the reason stays
    entry = audit_entries(db_url, "journey.cancelled", "journey/welcome/c1")[-1]
    assert entry.actor == "marketer" and entry.before is not None and entry.before["attempts"] == 5
    assert entry.after == {"status": "cancelled"}
    # a finance user may read journeys but not change journey flows
    finance = Browser(app, "finance")
    assert finance.post_form("/journeys/cancel", {"journey_id": "journey/welcome/c2"}).status_code == 403
    assert 'aria-label="放弃 journey' not in finance.get("/journeys/failures").text
