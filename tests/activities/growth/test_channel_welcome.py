"""action.channel_welcome against the loopback WeCom: the channel's welcome goes out with the add's
WelcomeCode once; no code (console welcome, earlier chat), 41051 and 41096 are outcomes shown on the
channel's add, not failures; the channel's tags land on the customer in WeCom."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from activities.growth import channels, qr
from activities.growth.action_channel_welcome import ChannelWelcome
from activities.growth.channels import ChannelSpec
from engine.actions import Services, perform
from engine.db.growth_models import ChannelAdd
from engine.db.session import session_factory
from engine.runtime import ActionRequest
from tests.activities.growth.growth_kit import connect_wecom, deliver
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom

__all__ = ["fake_wecom"]


@pytest.fixture
def image_url() -> Iterator[str]:
    """A PNG on a loopback HTTP server (allow-listed in the connector's image hosts)."""
    body = qr.png("https://example.com/welcome")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/welcome.png"
    server.shutdown()
    server.server_close()


@pytest.fixture
def code(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch, image_url: str) -> str:
    connect_wecom(db_url, fake_wecom, monkeypatch, image_hosts=["127.0.0.1"])
    made = channels.create_channel(db_url, ChannelSpec(
        key="poster-1", name="地推海报", staff=["zhangsan"], tags=["地推"],
        welcome={"text": "你好 {{ customer.name }}，欢迎来自地推海报！", "attachments": [image_url]}),
        "marketer", datetime.now(UTC))
    return str(made.config_id)


def welcome(db_url: str, event: dict[str, Any], visit: int = 1) -> dict[str, Any]:
    request = ActionRequest(key=f"journey/channel-welcome/{event['customer_id']}/{event['id']}/welcome/{visit}",
                            workflow_id="journey/channel-welcome/x", flow_id="channel-welcome", version=1,
                            node_id="welcome", node_type=ChannelWelcome.type, config={"tag_in_wecom": True},
                            customer_id=event["customer_id"], event=event, now=datetime.now(UTC).isoformat())
    return perform(ChannelWelcome, request, Services(database_url=db_url))


def add_status(db_url: str) -> list[tuple[str, str]]:
    with session_factory(db_url)() as db:
        rows = db.scalars(select(ChannelAdd).order_by(ChannelAdd.id))
        return [(a.welcome_status, a.welcome_detail[:20]) for a in rows]


def test_the_welcome_goes_out_once_with_the_code_and_tags_land_in_wecom(db_url: str, fake_wecom: FakeWeCom,
                                                                       code: str) -> None:
    (_, event), = deliver(db_url, fake_wecom.scan_and_add(code, "wmW1", name="小李")[0],
                          profile={"name": "小李"})
    event["customer"] = {"wecom_external_userid": "wmW1"}
    result = welcome(db_url, event)
    assert result["port"] == "out" and result["detail"]["status"] == "sent"
    (external, how, text, attachments), = fake_wecom.delivered
    assert (external, how, text) == ("wmW1", "welcome", "你好 小李，欢迎来自地推海报！")
    media_id = attachments[0]["image"]["media_id"]  # uploaded first: WeCom takes pic_url only from its uploads
    assert fake_wecom.media[media_id] == qr.png("https://example.com/welcome")
    assert result["detail"]["wecom_tags"] == ["地推"] and len(fake_wecom.contacts["wmW1"]["tags"]) == 1
    # a second journey (another flow on contact_added, or a replay) does not send again
    again = welcome(db_url, event, visit=2)
    assert again["detail"]["status"] == "sent" and len(fake_wecom.delivered) == 1
    assert add_status(db_url) == [("sent", "")]
    assert fake_wecom.problems == []


def test_no_code_41051_and_41096_are_outcomes_shown_on_the_add(db_url: str, fake_wecom: FakeWeCom, code: str) -> None:
    fake_wecom.console_welcome.add("zhangsan")
    (_, first), = deliver(db_url, fake_wecom.scan_and_add(code, "wmN1")[0])
    fake_wecom.console_welcome.clear()
    xml, _, used_code = fake_wecom.scan_and_add(code, "wmN2")
    (_, second), = deliver(db_url, xml)
    xml, _, other_code = fake_wecom.scan_and_add(code, "wmN3")
    (_, third), = deliver(db_url, xml)
    # another app of the corp already used the second code; another app is sending the third
    fake_wecom.used_codes.add(used_code)
    results = [welcome(db_url, e) for e in (first, second)]
    fake_wecom.another_app_sends(other_code)
    results.append(welcome(db_url, third))
    assert [(r["port"], r["detail"]["status"]) for r in results] == [
        ("not_sent", "no_code"), ("not_sent", "used"), ("not_sent", "other_app")]
    statuses = [s for s, _ in add_status(db_url)]
    assert statuses == ["no_code", "used", "other_app"]
    with session_factory(db_url)() as db:
        detail = db.scalar(select(ChannelAdd.welcome_detail).order_by(ChannelAdd.id))
    assert "admin console" in str(detail)
    assert fake_wecom.delivered == []


def test_the_channel_page_knows_whether_the_welcome_flow_runs(db_url: str) -> None:
    import json
    from pathlib import Path

    from engine import flows as flowsvc
    from engine.db.session import transaction

    with session_factory(db_url)() as db:
        assert channels.welcome_flow_active(db) is False
    doc = json.loads((Path(__file__).resolve().parents[3] / "flows" / "channel-welcome.json").read_text("utf-8"))
    with transaction(db_url) as db:
        flowsvc.save_draft(db, doc, "marketer")
        flowsvc.publish(db, "channel-welcome", "marketer")
    with session_factory(db_url)() as db:
        assert channels.welcome_flow_active(db) is True
