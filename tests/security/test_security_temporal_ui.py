"""The embedded Temporal UI sits behind the admin login (issue 18, item 3): ``/admin/temporal/…`` is
proxied to the UI on 127.0.0.1 for admins only, read-only, and only when it is switched on. A loopback
HTTP server stands in for the dev server's UI and counts what reaches it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from designer.app import create_app
from engine import auth
from engine.db.session import transaction
from engine.settings import get_settings

SEEN: list[tuple[str, str]] = []


class _FakeUI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append((self.command, self.path))
        body = b"<html>Temporal UI: namespaces</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ui(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeUI)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port - 1000}")
    SEEN.clear()
    yield port
    server.shutdown()
    server.server_close()


def _clients(db_url: str, monkeypatch: pytest.MonkeyPatch, on: bool) -> dict[str, TestClient]:
    monkeypatch.setenv("TIDEFLOW_TEMPORAL_UI", "true" if on else "false")
    get_settings.cache_clear()
    app = create_app(db_url, connect=False)
    with transaction(db_url) as db:
        tokens = {role: auth.create_token(db, auth.create_user(db, role, "a-long-password", role), "t")
                  for role in ("admin", "marketer", "ops", "auditor")}
    clients = {role: TestClient(app, headers={"Authorization": f"Bearer {token}"}) for role, token in tokens.items()}
    clients["anonymous"] = TestClient(app)
    return clients


@pytest.mark.usefixtures("cheap_passwords")
def test_only_admins_reach_the_ui_and_only_to_read(db_url: str, ui: int, monkeypatch: pytest.MonkeyPatch) -> None:
    clients = _clients(db_url, monkeypatch, on=True)
    page = clients["admin"].get("/admin/temporal/namespaces/default/workflows")
    assert page.status_code == 200 and "Temporal UI" in page.text
    assert SEEN == [("GET", "/admin/temporal/namespaces/default/workflows")]
    for role in ("marketer", "ops", "auditor"):
        assert clients[role].get("/admin/temporal/namespaces").status_code == 403
    assert clients["anonymous"].get("/admin/temporal/namespaces", follow_redirects=False).status_code in (303, 401)
    assert clients["admin"].post("/admin/temporal/api/v1/namespaces/default/workflows/x/terminate",
                                 headers={"X-CSRF-Token": "x"}).status_code in (403, 405)
    assert SEEN == [("GET", "/admin/temporal/namespaces/default/workflows")]  # nothing else reached it


@pytest.mark.usefixtures("cheap_passwords")
def test_the_ui_is_off_by_default(db_url: str, ui: int, monkeypatch: pytest.MonkeyPatch) -> None:
    clients = _clients(db_url, monkeypatch, on=False)
    assert clients["admin"].get("/admin/temporal/namespaces").status_code == 404
    assert SEEN == []
