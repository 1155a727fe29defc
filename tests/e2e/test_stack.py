"""``tideflow up`` as a user runs it: log in, publish a flow through the API, send events, watch the
journey, publish a new version while a journey waits, then stop the stack with a signal."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.stack import E2EStack, group_members
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FLOW_ID = "e2e-welcome"
MESSAGE_TIMEOUT = 20


def welcome_flow(template: str) -> dict[str, Any]:
    nodes = [("start", "trigger.event", {"event": "wecom.contact_added"}),
             ("hello", "action.send_message", {"channel": "dry-run", "template": template}),
             ("wait", "wait.delay", {"duration": "P1D"}),
             ("tag", "action.tag", {"add": ["e2e-welcomed"]})]
    edges = [("start", "hello"), ("hello", "wait"), ("wait", "tag")]
    # the demo flows react to wecom.contact_added too: keep this flow out of their frequency caps
    return {"schema": "tideflow/flow@1", "id": FLOW_ID, "name": "E2E welcome", "kind": "journey",
            "settings": {"frequency_capped": False},
            "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
            "edges": [{"from": a, "port": "out", "to": b} for a, b in edges]}


def contact_added(event_id: str, external_userid: str, name: str) -> dict[str, Any]:
    return {"id": event_id, "type": "wecom.contact_added", "source": "e2e",
            "customer": {"wecom_external_userid": external_userid}, "profile": {"name": name}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("e2e-up")) as s:
        try:
            s.up()
        except BaseException:
            print(s.logs_tail())
            raise
        yield s


def messages_for(stack: E2EStack, customer_id: str) -> list[dict[str, Any]]:
    return list(stack.api("GET", "/api/messages", params={"customer_id": customer_id, "flow": FLOW_ID}))


def journey_of(stack: E2EStack, customer_id: str) -> dict[str, Any] | None:
    found = stack.api("GET", "/api/journeys", params={"flow": FLOW_ID, "limit": 1000})["journeys"]
    return next((j for j in found if j["customer_id"] == customer_id), None)


def send(stack: E2EStack, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.api("POST", "/api/events", expect=202, json=event)
    return result


def test_login_page_and_demo_credentials(stack: E2EStack) -> None:
    creds = stack.credentials()
    assert set(creds) >= {"username", "password", "token"}
    assert (stack.credentials_file.stat().st_mode & 0o777) == 0o600

    with httpx.Client(base_url=stack.base_url, timeout=30) as browser:
        home = browser.get("/")
        assert home.status_code == 303 and home.headers["location"].startswith("/login")
        page = browser.get("/login")
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        login = browser.post("/login", data={"username": creds["username"], "password": creds["password"],
                                             "csrf_token": found.group(1), "next": "/"})
        assert login.status_code == 303, login.text
        assert browser.get("/").status_code == 200

    # the token works for the API; without it the API answers 401, not a login page
    assert stack.api("GET", "/api/flows") is not None
    assert httpx.get(f"{stack.base_url}/api/flows", timeout=10).status_code == 401


def test_journey_dedupe_and_versions(stack: E2EStack) -> None:
    created = stack.api("POST", "/api/flows", expect=201, json=welcome_flow("你好 {{ customer.name }}"))
    assert created["problems"] == [], created
    published = stack.api("POST", f"/api/flows/{FLOW_ID}/publish", expect=201)
    assert published["version"] == 1

    first = send(stack, contact_added("evt-alice-1", "wm-e2e-alice", "Alice"))
    assert first["status"] == "accepted" and first["routing"] == "done", first
    alice = first["customer_id"]
    assert f"journey/{FLOW_ID}/{alice}" in first["started"], first

    sent = wait_until(lambda: messages_for(stack, alice), MESSAGE_TIMEOUT, "the welcome message", every=0.1)
    assert [m["content"] for m in sent] == ["你好 Alice"]
    assert sent[0]["channel"] == "dry-run" and sent[0]["status"] == "sent"

    def stats_settled() -> dict[str, Any] | None:
        nodes: dict[str, Any] = stack.api("GET", f"/api/flows/{FLOW_ID}/stats")["nodes"]
        ok = nodes.get("start", {}).get("entered") == 1 and nodes.get("wait", {}).get("waiting") == 1
        return nodes if ok else None

    nodes = wait_until(stats_settled, MESSAGE_TIMEOUT, "stats: entered=1 at the trigger, waiting=1 at the delay")
    assert nodes["hello"]["entered"] == 1 and nodes["hello"]["left"] == {"out": 1}
    assert "tag" not in nodes or nodes["tag"]["entered"] == 0
    wait_until(lambda: (journey_of(stack, alice) or {}).get("status") == "waiting", MESSAGE_TIMEOUT,
               "Alice's journey waiting")

    # the same event again: stored once, no second journey, no second message
    again = send(stack, contact_added("evt-alice-1", "wm-e2e-alice", "Alice"))
    assert again["status"] == "duplicate" and not any(FLOW_ID in j for j in again["started"]), again
    # a new event for the same customer does not enrol her twice either (re-entry: never)
    other = send(stack, contact_added("evt-alice-2", "wm-e2e-alice", "Alice"))
    assert other["status"] == "accepted" and not any(FLOW_ID in j for j in other["started"]), other
    time.sleep(1.5)
    assert [m["content"] for m in messages_for(stack, alice)] == ["你好 Alice"]

    # an edited flow is version 2; Alice's journey, waiting in the delay, keeps version 1
    stack.api("PUT", f"/api/flows/{FLOW_ID}", json=welcome_flow("您好 {{ customer.name }}，欢迎"))
    assert stack.api("POST", f"/api/flows/{FLOW_ID}/publish", expect=201)["version"] == 2
    bob = send(stack, contact_added("evt-bob-1", "wm-e2e-bob", "Bob"))
    assert bob["status"] == "accepted" and f"journey/{FLOW_ID}/{bob['customer_id']}" in bob["started"], bob
    bob_sent = wait_until(lambda: messages_for(stack, bob["customer_id"]), MESSAGE_TIMEOUT, "Bob's message",
                          every=0.1)
    assert [m["content"] for m in bob_sent] == ["您好 Bob，欢迎"]

    alice_journey = journey_of(stack, alice)
    bob_journey = wait_until(lambda: journey_of(stack, bob["customer_id"]), MESSAGE_TIMEOUT, "Bob's journey")
    assert alice_journey is not None and alice_journey["version"] == 1, alice_journey
    assert alice_journey["status"] == "waiting" and alice_journey["node"] == "wait", alice_journey
    assert bob_journey["version"] == 2, bob_journey
    assert [m["content"] for m in messages_for(stack, alice)] == ["你好 Alice"]

    v1 = stack.api("GET", f"/api/flows/{FLOW_ID}/stats", params={"version": 1})["nodes"]
    assert v1["start"]["entered"] == 1 and v1["wait"]["waiting"] == 1
    v2 = wait_until(lambda: (stack.api("GET", f"/api/flows/{FLOW_ID}/stats")["nodes"].get("wait", {})
                             .get("waiting") == 1), MESSAGE_TIMEOUT, "version 2 stats")
    assert v2


@pytest.mark.parametrize(("body", "content_type", "status", "field"), [
    (b'{"id": "x", "type": ', "application/json", 400, "body"),
    (b"\xff\xfe not even utf-8", "application/json", 400, "body"),
    (json.dumps(contact_added("bad-1", "wm-e2e-x", "X") | {"type": "wecom.contact_addd"}).encode(),
     "application/json", 422, "type"),
    (json.dumps([contact_added("bad-2", "wm-e2e-x", "X"), {"id": "bad-3", "customer": {"phone": "+8613800138000"}}])
     .encode(), "application/json", 422, "1.type"),
    (json.dumps(contact_added("bad-4", "wm-e2e-x", "X") | {"payload": {"blob": "x" * (257 * 1024)}}).encode(),
     "application/json", 413, "payload"),
    (b"[]", "application/json", 422, "body"),
], ids=["truncated-json", "not-utf8", "unknown-type", "batch-missing-type", "oversized-payload", "empty-batch"])
def test_malformed_events_never_500(stack: E2EStack, body: bytes, content_type: str, status: int,
                                    field: str) -> None:
    r = stack.http.post("/api/events", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field, detail
    assert detail["message"] and detail["fix"], detail


def test_oversized_body_without_json_content_type(stack: E2EStack) -> None:
    body = json.dumps(contact_added("bad-5", "wm-e2e-x", "X") | {"payload": {"blob": "x" * (300 * 1024)}})
    r = stack.http.post("/api/events", content=body.encode(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["field"] == "payload", r.text  # the part that is too big, named


def test_oversized_profile_is_refused(stack: E2EStack) -> None:
    event = {"id": "big-profile-1", "type": "custom.e2e_big_profile", "source": "e2e",
             "customer": {"external_id": "e2e-big-profile"},
             "profile": {"name": "Big", "attributes": {"blob": "x" * (300 * 1024)}}}
    r = stack.http.post("/api/events", json=event)
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["field"] in ("profile", "profile.attributes"), r.text


def test_nothing_went_wrong_in_the_web_log(stack: E2EStack) -> None:
    log = stack.log("up", tail=10**7)
    assert "Traceback" not in log, log[-6000:]


def test_sigterm_stops_every_process(stack: E2EStack) -> None:
    """Last: stop ``tideflow up`` as a service manager would (SIGTERM to the main process only)."""
    up = stack.procs["up"]
    children = [p for p in group_members(up.pid) if p != up.pid]
    assert len(children) >= 3, f"expected temporal, worker and web under tideflow up, found {children}"
    stack.send_signal("up", signal.SIGTERM, group=False)
    assert up.wait(timeout=30) == 0, stack.log("up")
    wait_until(lambda: not group_members(up.pid), 20, f"children of tideflow up {children} to exit")


def test_ctrl_c_stops_every_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Ctrl-C in a terminal: SIGINT to the whole process group; everything exits cleanly — also when
    ``tideflow up`` was started from a script with ``&``, which hands it SIGINT ignored (its children
    re-enable it and stop, so ``up`` must not read their exit as a crash and answer 1)."""
    with E2EStack(tmp_path_factory.mktemp("e2e-ctrl-c")) as s:
        up = s.up(demo=False, sigint_ignored=True)
        s.send_signal("up", signal.SIGINT, group=True)
        assert up.wait(timeout=30) == 0, s.log("up")
        wait_until(lambda: not group_members(up.pid), 20, "the stack's processes to exit")
        assert not s.credentials_file.exists()
