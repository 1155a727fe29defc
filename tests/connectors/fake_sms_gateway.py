"""The SMS gateway on loopback: answers like the HTTP SMS gateway the SMS connector posts to and keeps what it
was sent (tests/connectors/test_sms_gateway.py, and every end-to-end test whose journeys text customers)."""

from __future__ import annotations

import threading

from tests.connectors.loopback import LoopbackServer, Reply, Request


class Loopback(LoopbackServer):
    """An HTTP server on 127.0.0.1: answers with the scripted replies in order, then ``default``."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        super().__init__()

    def serve(self, request: Request) -> Reply:
        with self.arrived:
            self.requests.append(request)
            reply = self.script.pop(0) if self.script else self.default
            self.arrived.notify_all()
        return reply

    def reply(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def wait_for(self, count: int, timeout: float = 20) -> list[Request]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)
