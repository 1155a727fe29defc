"""A scriptable HTTP receiver on 127.0.0.1 for the action.webhook tests, and small flow helpers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.webhook.signing import SIGNATURE_HEADER, WebhookSignatureError, verify_signature
from engine.runtime import ActionRequest
from tests.engine.flowkit import customer as customer
from tests.engine.flowkit import messages as messages
from tests.engine.flowkit import publish as publish

SECRET_ENV = "TIDEFLOW_WEBHOOK_SECRET_TEST"
SECRET = "s3cr3t-value-that-must-not-leak"


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: the signature check's outcome: None (no secret expected), "ok" or the error's class name
    signature: str | None

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers with the scripted replies in order, then with ``default``; records every request.

    With ``secret`` set it verifies ``X-Tideflow-Signature`` the way a real receiver would and answers
    401 when it does not verify.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply()
        self.secret: str | None = None
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.url = ""

    def reply(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def take(self, seen: Seen) -> Reply:
        with self.lock:
            self.requests.append(seen)
            return self.script.pop(0) if self.script else self.default

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            signature: str | None = None
            if receiver.secret is not None:
                try:
                    verify_signature(receiver.secret, body, headers.get(SIGNATURE_HEADER.lower()), int(time.time()))
                    signature = "ok"
                except WebhookSignatureError as exc:
                    signature = type(exc).__name__
            reply = receiver.take(Seen(self.command, self.path, headers, body, signature))
            if signature not in (None, "ok"):
                reply = Reply(401, {"error": signature})
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.payload()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout test)
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A real HTTP server on a free port of 127.0.0.1, in a background thread. Loopback is refused to
    flows by default (engine/outbound.py): it stands in for an internal endpoint the operator allowed."""
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_OUTBOUND_ALLOW", "127.0.0.1/32")
    get_settings.cache_clear()
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET



def request(config: dict[str, Any], customer_id: str | None = None, key: str | None = None,
            variables: dict[str, Any] | None = None, simulate: bool = False) -> ActionRequest:
    """An ActionRequest for a webhook node, as the interpreter would build it."""
    workflow_id = f"journey/hooks/{customer_id or 'nobody'}"
    return ActionRequest(
        key=key or f"{workflow_id}/hook/{uuid.uuid4().hex[:6]}", workflow_id=workflow_id, flow_id="hooks", version=1,
        node_id="hook", node_type="action.webhook", config=config, customer_id=customer_id,
        variables=variables or {}, event={"id": "e1", "type": "order.paid", "payload": {"amount": 9900}},
        simulate=simulate,
    )
