"""The HTTP plumbing of the test servers: a server on 127.0.0.1 in a daemon thread that turns every request
into a :class:`Request` and answers with the :class:`Reply` its ``serve`` returns.

Used by the SMS gateway loopback (:mod:`tests.connectors.fake_sms_gateway`), the fake Youzan / Shopify /
抖店 platforms (:mod:`tests.connectors.fake_shops`) and the fake TOP / JOS gateways
(:mod:`tests.connectors.shop_platforms`).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"code": "OK", "data": {"msgid": "m-1"}})
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer(ABC):
    """An HTTP server on 127.0.0.1 (``url``) answering every request with ``serve(request)``; a context
    manager that starts it and shuts it down."""

    #: the HTTP methods served; any other is answered 501 (as ``BaseHTTPRequestHandler`` does)
    methods: ClassVar[tuple[str, ...]] = ("GET", "POST", "PUT")

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.command not in owner.methods:
                    self.send_error(501, f"Unsupported method ({self.command!r})")
                    return
                length = int(self.headers.get("content-length") or 0)
                parts = urlsplit(self.path)
                seen = Request(self.command, parts.path, dict(parse_qsl(parts.query)),
                               {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                reply = owner.serve(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @abstractmethod
    def serve(self, request: Request) -> Reply:
        """The platform's answer to one request."""

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
