"""The attacks of issue 18 against the real stack — ``tideflow up``: Temporal dev server, worker and web
app as subprocesses on 127.0.0.1 — each of which must be refused. A marketer with publish rights
cannot make the health check slower than 1 s, cannot stall routing and cannot reach a private address;
bad input is a 4xx naming the limit; files are private; the Temporal UI is not exposed.

Bounded in count and time: one stack for the module, a handful of requests per attack; the only
listeners are on 127.0.0.1, and the one standing for an internal service must receive nothing.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.webhook.signing import SIGNATURE_HEADER, sign_payload
from tests.e2e.stack import E2EStack, group_members
from tests.security.cost_kit import CONDITION_38S, QUADRATIC, TEMPLATE_231, order
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

HOOK_SECRET = "stack-hook-secret-0123456789"


class Internal:
    """An HTTP service on 127.0.0.1 standing for something inside the network: it counts what reaches it."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("security")) as s:
        try:
            s.up()
            s.marketer = _user(s, "mallory", "marketer")  # type: ignore[attr-defined]
        except BaseException:
            print(s.logs_tail())
            raise
        yield s


@pytest.fixture(scope="module")
def internal() -> Iterator[Internal]:
    service = Internal()
    yield service
    service.close()


def _user(stack: E2EStack, name: str, role: str) -> httpx.Client:
    out = subprocess.run([*stack.tideflow(), "users", "create", name, "--role", role, "--password",
                          "a-long-password-1", "--token"], env=stack.env, cwd=stack.root, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    token = next(line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.startswith("API token:"))
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _flow(flow_id: str, nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str, str]]
          ) -> dict[str, Any]:
    return {"schema": "tideflow/flow@1", "id": flow_id, "name": flow_id, "kind": "journey",
            "settings": {"frequency_capped": False},
            "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
            "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges]}


def _publish(client: httpx.Client, document: dict[str, Any]) -> httpx.Response:
    saved = client.post("/api/flows", json=document)
    assert saved.status_code == 201, saved.text
    return client.post(f"/api/flows/{document['id']}/publish")


def _journey(stack: E2EStack, flow_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = stack.api("GET", "/api/journeys", params={"flow": flow_id})["journeys"]
        done = [j for j in found if j["status"] not in ("running", "waiting")]
        return done[0] if done else None

    result: dict[str, Any] = wait_until(ended, timeout, f"a journey of {flow_id} ends")
    return result


# -- files and the Temporal UI -------------------------------------------------------------------------------
def test_the_data_directory_and_its_databases_are_private(stack: E2EStack) -> None:
    assert stat.S_IMODE(stack.data_dir.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in stack.data_dir.iterdir() if p.is_file()}
    assert {"tideflow.db", "temporal.db"} <= set(files), files
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}


def test_the_temporal_ui_is_not_listening(stack: E2EStack) -> None:
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", stack.temporal_port + 1000)) != 0
    assert stack.http.get("/admin/temporal/namespaces").status_code == 404


# -- a marketer with publish rights -------------------------------------------------------------------------
def test_a_costly_condition_is_refused_at_publish_naming_the_node(stack: E2EStack) -> None:
    marketer: httpx.Client = stack.marketer  # type: ignore[attr-defined]
    r = _publish(marketer, _flow("atk-costly", [("start", "trigger.event", {"event": "order.paid"}),
                                               ("check", "logic.condition", {"expr": CONDITION_38S})],
                                 [("start", "out", "check")]))
    assert r.status_code == 422, r.text
    problem = next(p for p in r.json()["detail"]["problems"] if p["code"] == "too_costly")
    assert problem["node"] == "check" and "operations" in problem["message"]


def test_the_health_check_stays_fast_while_a_marketer_previews_the_costly_template(stack: E2EStack) -> None:
    marketer: httpx.Client = stack.marketer  # type: ignore[attr-defined]
    me = marketer.get("/api/me").json()
    headers = {"X-CSRF-Token": str(me.get("csrf_token") or "")}

    def preview() -> int:
        r = marketer.post("/flows/template/preview", data={"_field": "template", "template": TEMPLATE_231},
                          headers=headers)
        return r.status_code

    latencies: list[float] = []
    with ThreadPoolExecutor(max_workers=4) as attackers:
        attacks = [attackers.submit(preview) for _ in range(8)]
        while not all(a.done() for a in attacks):
            started = time.perf_counter()
            assert httpx.get(f"{stack.base_url}/api/health", timeout=10).status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
        statuses = [a.result() for a in attacks]
    assert all(s < 500 for s in statuses), statuses
    assert latencies and max(latencies) < 1.0, max(latencies)


def test_a_condition_too_costly_on_real_data_fails_its_journey_and_routing_goes_on(stack: E2EStack) -> None:
    marketer: httpx.Client = stack.marketer  # type: ignore[attr-defined]
    r = _publish(marketer, _flow("atk-orders", [("start", "trigger.event", {"event": "order.paid"}),
                                               ("check", "logic.condition", {"expr": QUADRATIC.format(n=0)}),
                                               ("tag", "action.tag", {"add": ["big-order"]})],
                                 [("start", "out", "check"), ("check", "yes", "tag")]))
    assert r.status_code == 201, r.text
    big = {**order(400, "atk-big-1"), "source": "atk", "customer": {"phone": "13700000001"}}
    assert marketer.post("/api/events", json=big).status_code == 202
    failed = _journey(stack, "atk-orders")
    assert failed["status"] == "failed" and "node 'check'" in failed["error"] and "operations" in failed["error"]
    # routing goes on: the next, ordinary event starts its journey, which runs to the end
    r = _publish(marketer, _flow("atk-after", [("start", "trigger.event", {"event": "customer.created"}),
                                              ("tag", "action.tag", {"add": ["after"]})], [("start", "out", "tag")]))
    assert r.status_code == 201, r.text
    assert marketer.post("/api/events", json={"id": "atk-after-1", "type": "customer.created", "source": "atk",
                                              "customer": {"phone": "13700000002"}}).status_code == 202
    assert _journey(stack, "atk-after")["status"] == "completed"


def test_a_flow_cannot_reach_a_private_address(stack: E2EStack, internal: Internal) -> None:
    marketer: httpx.Client = stack.marketer  # type: ignore[attr-defined]
    targets = [f"http://127.0.0.1:{internal.port}/admin", f"http://2130706433:{internal.port}/admin",
               "http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{stack.temporal_port + 1000}/api/v1"]
    nodes: list[tuple[str, str, dict[str, Any]]] = [("start", "trigger.event", {"event": "customer.created"})]
    edges: list[tuple[str, str, str]] = []
    previous = "start"
    for i, url in enumerate(targets):
        nodes.append((f"hook{i}", "action.webhook", {"url": url, "method": "GET", "timeout_seconds": 2}))
        edges.append((previous, "out" if previous == "start" else "failed", f"hook{i}"))
        previous = f"hook{i}"
    assert _publish(marketer, _flow("atk-ssrf", nodes, edges)).status_code == 201
    assert marketer.post("/api/events", json={"id": "atk-ssrf-1", "type": "customer.created", "source": "atk",
                                              "customer": {"phone": "13700000003"}}).status_code == 202
    assert _journey(stack, "atk-ssrf")["status"] == "completed"
    stats = stack.api("GET", "/api/flows/atk-ssrf/stats")["nodes"]
    assert all(stats[f"hook{i}"]["left"] == {"failed": 1} for i in range(len(targets))), stats
    assert internal.hits == 0


def test_only_admins_and_auditors_read_the_audit_log(stack: E2EStack) -> None:
    marketer: httpx.Client = stack.marketer  # type: ignore[attr-defined]
    assert marketer.get("/api/audit").status_code == 403
    assert stack.http.get("/api/audit").status_code == 200


# -- bad input is a 4xx, never a 500 or a memory spike --------------------------------------------------------
def _web_rss_kb(stack: E2EStack) -> int:
    """The resident memory of the web app's process (the uvicorn child of ``tideflow up``)."""
    for pid in group_members(stack.procs["up"].pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b" web" in cmdline:
            status = Path(f"/proc/{pid}/status").read_text()
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    raise AssertionError("no web process found")


def test_a_100_mb_body_is_refused_while_it_is_read_without_a_memory_spike(stack: E2EStack) -> None:
    before = _web_rss_kb(stack)
    # a declared 100 MB: the answer comes before the body is sent
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=30) as raw:
        raw.sendall(f"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {stack.token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n{{".encode())
        received = b""
        while b"TIDEFLOW_MAX_BATCH_BYTES" not in received:  # headers and body may come in separate packets
            piece = raw.recv(65536)
            if not piece:
                break
            received += piece
        answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413") and "TIDEFLOW_MAX_BATCH_BYTES" in answer, answer[:300]

    def chunks() -> Iterator[bytes]:  # streamed, no length: 100 MB in 1 MB pieces
        yield b'[{"id": "x", "payload": "'
        for _ in range(100):
            yield b"x" * (1024 * 1024)

    try:
        streamed = stack.http.post("/api/events", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413, streamed.text
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client was still sending: refused all the same
    assert _web_rss_kb(stack) - before < 60 * 1024  # far below the 560 MB a 100 MB body used to cost


BAD_EVENTS: list[tuple[str, bytes, int, str]] = [
    ("100,000-deep array", b"[" * 100_000 + b"]" * 100_000, 400, "nested deeper"),
    ("900-deep payload", json.dumps({"id": "d1", "type": "order.paid", "customer": {"phone": "13700000009"},
                                     "payload": {}}).encode().replace(b'"payload": {}', b'"payload": ' + b'{"a": ' * 900
                                                                      + b"1" + b"}" * 900), 400, "nested deeper"),
    ("lone surrogate", b'{"id": "s1", "type": "order.paid", "customer": {"phone": "13700000009"}, '
                       b'"payload": {"note": "\\ud800"}}', 400, "surrogate"),
    ("occurred_at without a UTC time", json.dumps({
        "id": "o1", "type": "order.paid", "customer": {"phone": "13700000009"},
        "occurred_at": "0001-01-01T00:00:00+14:00"}).encode(), 422, "range"),
    ("unknown customer_id", json.dumps({
        "id": "u1", "type": "order.paid", "customer": {"customer_id": "c_does_not_exist"}}).encode(), 422,
     "does not exist"),
]


@pytest.mark.parametrize(("what", "body", "status", "says"), BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS])
def test_bad_events_get_a_4xx_naming_the_problem(stack: E2EStack, what: str, body: bytes, status: int,
                                                 says: str) -> None:
    r = stack.http.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and says in r.text, (what, r.status_code, r.text[:300])


def test_a_non_utf8_body_on_decisions_is_a_400(stack: E2EStack) -> None:
    r = stack.http.post("/api/decisions", content='{"xml": "决策"}'.encode("gbk"),
                        headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.text


def test_a_deep_but_correctly_signed_hooks_body_is_a_400(stack: E2EStack) -> None:
    r = stack.http.put("/api/connectors/atk-hook", json={"kind": "webhook", "name": "atk", "settings": {},
                                                         "secrets": {"secret": HOOK_SECRET}})
    assert r.status_code in (200, 201), r.text
    body = json.dumps({"id": "h1", "type": "order.paid", "customer": {"phone": "13700000008"},
                       "payload": {}}).encode().replace(b'"payload": {}', b'"payload": ' + b"[" * 5000 + b"]" * 5000)
    signed = {SIGNATURE_HEADER: sign_payload(HOOK_SECRET, body, int(time.time())), "content-type": "application/json"}
    r = httpx.post(f"{stack.base_url}/hooks/atk-hook", content=body, headers=signed, timeout=30)
    assert r.status_code == 400 and "nested deeper" in r.text, r.text[:300]


# -- login, headers ------------------------------------------------------------------------------------------------
def test_rotating_x_forwarded_for_does_not_lift_the_login_limit(stack: E2EStack) -> None:
    statuses = []
    with httpx.Client(base_url=stack.base_url, timeout=30) as browser:
        browser.get("/login")
        csrf = browser.cookies.get("tideflow_login_csrf") or ""
        for i in range(12):
            r = browser.post("/login", data={"username": f"nobody{i}", "password": "wrong-password",
                                             "csrf_token": csrf}, headers={"X-Forwarded-For": f"203.0.113.{i}"})
            statuses.append(r.status_code)
    assert 429 in statuses and statuses.index(429) <= 10, statuses


def test_pages_carry_a_strict_csp_and_the_api_reference_needs_no_cdn(stack: E2EStack) -> None:
    page = stack.http.get("/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    docs = stack.http.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower() and "<script>" not in docs.text
    assert stack.http.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_the_stack_processes_are_still_up(stack: E2EStack) -> None:
    assert stack.procs["up"].poll() is None
    assert os.path.exists(stack.data_dir / "tideflow.db")
