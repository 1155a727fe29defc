"""The callers of the fault suite: clients that send events the way a well-behaved integration does (retrying on
503 after ``Retry-After``, on timeouts and on refused connections, with the same event ids), and a misbehaving
SMS gateway on loopback (slow, 5xx, 429) that remembers what it was asked to send."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from connectors.webhook.signing import SIGNATURE_HEADER, sign_payload

ACKNOWLEDGED = ("accepted", "duplicate")


@dataclass
class SendStats:
    """What the callers went through: answers by status and retries."""

    answers: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: int | None) -> None:
        with self.lock:
            if status is None:
                self.transport_errors += 1
            else:
                self.answers[status] += 1

    @property
    def retries(self) -> int:
        return sum(n for s, n in self.answers.items() if s >= 500 or s == 429) + self.transport_errors

    def summary(self) -> str:
        parts = [f"{n}×{s}" for s, n in sorted(self.answers.items())]
        if self.transport_errors:
            parts.append(f"{self.transport_errors}× no connection/timeout")
        return ", ".join(parts)


class EventSender:
    """POST /api/events in batches from several threads; every 2xx acknowledges the event ids it names."""

    def __init__(self, base_url: str, token: str, timeout: float = 120, max_wait: float = 300,
                 retry_cap: float = 2.0) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        self.max_wait = max_wait
        self.retry_cap = retry_cap
        self.stats = SendStats()
        self.acknowledged: set[str] = set()
        #: the last answer the API gave for each event id (what it says it started and signalled)
        self.answers: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def post(self, events: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            status: int | None = None
            try:
                r = self.http.post("/api/events", json=events)
                status = r.status_code
            except httpx.TransportError:
                pass
            self.stats.saw(status)
            if status == 202:
                with self._lock:
                    answered = r.json()
                    self.acknowledged.update(e["id"] for e in answered if e["status"] in ACKNOWLEDGED)
                    self.answers.update((e["id"], e) for e in answered)
                return
            if status is not None and status < 500 and status != 429:
                raise RuntimeError(f"POST /api/events answered {status}: {r.text[:500]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"POST /api/events kept failing for {self.max_wait:.0f} s ({self.stats.summary()})")
            wait = float(r.headers.get("Retry-After", "1")) if status is not None else 0.5
            if self._closed.wait(min(wait, self.retry_cap)):
                raise RuntimeError("the run was stopped")

    def send(self, events: list[dict[str, Any]], batch: int, parallel: int) -> ThreadPoolExecutor:
        """Start sending (returns the pool: ``shutdown(wait=True)`` waits for the last batch)."""
        pool = ThreadPoolExecutor(parallel)
        for start in range(0, len(events), batch):
            pool.submit(self._safe_post, events[start:start + batch])
        return pool

    def _safe_post(self, events: list[dict[str, Any]]) -> None:
        if self._closed.is_set():
            return
        try:
            self.post(events)
        except Exception as exc:
            with self._lock:
                self.errors.append(str(exc))

    def close(self) -> None:
        """Stop retrying (batches not yet sent are dropped) and close the connections."""
        self._closed.set()
        self.http.close()


class HookSender:
    """Deliver signed bodies to /hooks/<connector> as a platform does: each delivery signed when it is sent."""

    def __init__(self, base_url: str, connector_id: str, secret: str, timeout: float = 120) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.path = f"/hooks/{connector_id}"
        self.secret = secret
        self.stats = SendStats()
        self.acknowledged: set[str] = set()
        self._lock = threading.Lock()

    def deliver(self, event: dict[str, Any], attempts: int = 20) -> None:
        body = json.dumps(event, ensure_ascii=False).encode()
        for _ in range(attempts):
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: sign_payload(self.secret, body, int(time.time()))}
            try:
                r = self.http.post(self.path, content=body, headers=headers)
            except httpx.TransportError:
                self.stats.saw(None)
                time.sleep(0.5)
                continue
            self.stats.saw(r.status_code)
            if r.status_code == 200:
                with self._lock:
                    self.acknowledged.add(event["id"])
                return
            if r.status_code < 500:
                raise RuntimeError(f"POST {self.path} answered {r.status_code}: {r.text[:300]}")
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0))
        raise RuntimeError(f"POST {self.path}: no 200 after {attempts} attempts")

    def deliver_all(self, deliveries: Iterable[dict[str, Any]], parallel: int) -> None:
        with ThreadPoolExecutor(parallel) as pool:
            for f in [pool.submit(self.deliver, d) for d in deliveries]:
                f.result()

    def close(self) -> None:
        self.http.close()


# -- a misbehaving SMS gateway ----------------------------------------------------------------------------------
@dataclass
class GatewayLog:
    """Per idempotency key: how many requests, and whether the text was taken (sent to the phone)."""

    requests: Counter[str] = field(default_factory=Counter)
    taken: dict[str, str] = field(default_factory=dict)  # key → phone
    resent: int = 0  # requests for a key already taken (answered with the first result: deduped)
    faults: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FlakyGateway:
    """An SMS gateway on 127.0.0.1 that fails the first attempt for most keys, chosen by the key's hash:
    500, 429 (with Retry-After), a reply slower than the client's timeout (the text *is* sent: the retry must
    be deduped by the key), a slow but in-time reply; other keys and every later attempt succeed."""

    MODES = ("http500", "http429", "too_slow", "slow", "ok", "http503", "ok")

    def __init__(self, slow_seconds: float = 0.4, too_slow_seconds: float = 2.5) -> None:
        self.log = GatewayLog()
        self.slow = slow_seconds
        self.too_slow = too_slow_seconds
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                status, extra, delay = gateway.decide(key, str(body.get("phone", "")))
                if delay:
                    time.sleep(delay)
                payload = json.dumps({"code": 0 if status == 200 else status, "id": f"sm-{key[-12:]}"}).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have given up waiting
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def mode(self, key: str) -> str:
        return self.MODES[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(self.MODES)]

    def decide(self, key: str, phone: str) -> tuple[int, dict[str, str], float]:
        log = self.log
        with log.lock:
            log.requests[key] += 1
            first = log.requests[key] == 1
            mode = self.mode(key) if first else "ok"
            if mode in ("http500", "http503", "http429"):
                log.faults[mode] += 1
                return int(mode[4:]), ({"Retry-After": "1"} if mode == "http429" else {}), 0.0
            if key in log.taken:
                log.resent += 1
            else:
                log.taken[key] = phone
            if mode in ("slow", "too_slow"):
                log.faults[mode] += 1
            delay = {"slow": self.slow, "too_slow": self.too_slow}.get(mode, 0.0)
        return 200, {}, delay

    def __enter__(self) -> FlakyGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
