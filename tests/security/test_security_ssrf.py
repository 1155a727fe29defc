"""Flows and plugins cannot reach inside the network (issue 18, item 3).

No packet leaves this machine: for private and public ranges the guard's *decision* is tested with the
resolver stubbed and the socket layer replaced by a recorder that must stay empty (or, for a public
address, that records which address would have been dialled). End to end, only listeners on
127.0.0.x are used, and those that stand for a forbidden target must receive nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from engine import outbound, sdk
from engine.actions import ActionFailed
from engine.outbound import Allowlist, GuardedTransport, OutboundGuard, OutboundRefused, literal_ip, refusal
from engine.settings import get_settings


@pytest.fixture(autouse=True)
def _no_real_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may ask a real DNS server: a name nobody stubbed fails the test."""
    def refuse(host: str, port: int) -> list[str]:
        raise AssertionError(f"a real DNS lookup of {host!r} was attempted")

    monkeypatch.setattr(outbound, "resolve_host", refuse)


REFUSED = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "172.16.5.4", "172.31.255.255",  # noqa: S104
    "192.168.1.1",
    "169.254.169.254", "169.254.170.2", "100.64.0.1", "100.100.100.200", "224.0.0.251", "239.255.255.250",
    "240.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "ff0e::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1", "::169.254.169.254",
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1", "2002:7f00:1::",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:2800:220:1:248:1893:25c8:1946", "2400:3200::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    ip = literal_ip(address)
    assert ip is not None and refusal(ip) is not None, address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    ip = literal_ip(address)
    assert ip is not None and refusal(ip) is None


# every spelling the C resolver accepts for 127.0.0.1 / 169.254.169.254
SPELLINGS = [("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
             ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0177.1", "127.0.0.1"),
             ("[::1]", "::1"), ("[::ffff:7f00:1]", "::ffff:7f00:1"), ("2852039166", "169.254.169.254"),
             ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"), ("0251.0376.0251.0376", "169.254.169.254")]


@pytest.mark.parametrize(("host", "means"), SPELLINGS)
def test_ip_literals_in_any_spelling_are_read_as_the_address_they_mean(host: str, means: str) -> None:
    assert str(literal_ip(host)) == means
    with pytest.raises(OutboundRefused):
        OutboundGuard(resolver=_no_dns).check(host, 80)


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} is an address: it must not be looked up")


class Dialler:
    """Stands in for the socket layer: records where a connection would go, connects nowhere."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, **kwargs: Any) -> httpcore.NetworkStream:
        self.dialled.append((host, port))
        raise httpcore.ConnectError("test: no packet leaves this machine")


def _client(names: dict[str, list[str]], dialler: Dialler, allow: str = "", **kwargs: Any) -> httpx.Client:
    guard = OutboundGuard(Allowlist.parse(allow), resolver=lambda host, port: names[host])
    return httpx.Client(transport=GuardedTransport(guard, connect=dialler), trust_env=False, **kwargs)


@pytest.mark.parametrize(("name", "addresses"), [
    ("metadata.example", ["169.254.169.254"]), ("intranet.example", ["10.1.2.3"]),
    ("v6.example", ["fd00::5"]), ("mapped.example", ["::ffff:192.168.0.1"]), ("local.example", ["127.0.0.1"]),
    # a name with one public and one private address (a rebinding set-up) is refused as a whole
    ("mixed.example", ["93.184.216.34", "10.0.0.7"]),
])
def test_names_resolving_to_private_addresses_are_refused_before_any_connection(
        name: str, addresses: list[str]) -> None:
    dialler = Dialler()
    with _client({name: addresses}, dialler) as client, pytest.raises(OutboundRefused, match="resolves to"):
        client.get(f"https://{name}/latest/meta-data/")
    assert dialler.dialled == []


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding resolver: public first, loopback next
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    dialler = Dialler()
    guard = OutboundGuard(resolver=rebinding)
    with httpx.Client(transport=GuardedTransport(guard, connect=dialler), trust_env=False) as client, \
            pytest.raises(httpx.ConnectError):
        client.get("http://shop.example:8080/x")
    assert lookups == ["shop.example"]  # resolved once …
    assert dialler.dialled == [("93.184.216.34", 8080)]  # … and dialled the checked address, not the name


def test_an_allowlist_admits_internal_endpoints_on_purpose() -> None:
    dialler = Dialler()
    names = {"crm.internal": ["10.20.0.5"], "erp.corp.example": ["10.9.9.9"], "db.internal": ["10.20.9.9"]}
    with _client(names, dialler, allow="10.20.0.0/24, .corp.example") as client:
        for url in ("http://crm.internal/", "http://erp.corp.example/"):
            with pytest.raises(httpx.ConnectError):
                client.get(url)
        with pytest.raises(OutboundRefused):
            client.get("http://db.internal/")  # 10.20.9.9 is outside 10.20.0.0/24
    assert dialler.dialled == [("10.20.0.5", 80), ("erp.corp.example", 80)]


def test_proxy_settings_cannot_route_around_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://93.184.216.34:3128")
    monkeypatch.setenv("ALL_PROXY", "http://93.184.216.34:3128")
    dialler = Dialler()
    with _client({"metadata.example": ["169.254.169.254"]}, dialler) as client, pytest.raises(OutboundRefused):
        client.get("http://metadata.example/")
    assert dialler.dialled == []


# -- end to end: listeners on 127.0.0.x ----------------------------------------------------------------
class Listener:
    """An HTTP server on a loopback address that counts what reaches it."""

    def __init__(self, host: str, redirect_to: str | None = None) -> None:
        self.hits = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.hits += 1
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Listener]:
    """Stands for the Temporal UI / an internal service: it must receive nothing."""
    listener = Listener("127.0.0.1")
    yield listener
    listener.close()


def _allow(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TIDEFLOW_OUTBOUND_ALLOW", value)
    get_settings.cache_clear()


def test_the_sdk_helper_refuses_loopback(target: Listener) -> None:
    with sdk.http_client() as client, pytest.raises(OutboundRefused, match="loopback"):
        client.get(target.url + "/api/v1/namespaces")
    assert target.hits == 0


def test_every_redirect_hop_is_checked(monkeypatch: pytest.MonkeyPatch, target: Listener) -> None:
    # an allowed internal endpoint answers with a redirect to a forbidden one
    front = Listener("127.0.0.2", redirect_to=target.url + "/api/v1/namespaces")
    try:
        _allow(monkeypatch, "127.0.0.2/32")
        with sdk.http_client(follow_redirects=True) as client, pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            client.get(front.url + "/start")
        assert front.hits == 1 and target.hits == 0
    finally:
        front.close()


def _webhook(url: str, **config: Any) -> Any:
    from activities.webhook.call import CallWebhook

    ctx = sdk.make_context(node_id="hook", node_type="action.webhook", config={"url": url, **config})
    return CallWebhook.run(ctx, CallWebhook.Config.model_validate({"url": url, **config}))


@pytest.mark.parametrize("spelling", ["127.0.0.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_the_webhook_action_refuses_loopback_in_any_spelling(spelling: str, target: Listener,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "resolve_host", lambda host, port: {"localhost": ["127.0.0.1"]}[host])
    port = target.url.rsplit(":", 1)[1]
    with pytest.raises(ActionFailed, match="refused") as refused:
        _webhook(f"http://{spelling}:{port}/api/v1/namespaces/default/workflows", method="GET")
    assert "TIDEFLOW_OUTBOUND_ALLOW" in str(refused.value)
    assert target.hits == 0


def test_the_webhook_action_refuses_a_name_for_the_metadata_service(monkeypatch: pytest.MonkeyPatch) -> None:
    dialled: list[Any] = []
    monkeypatch.setattr(outbound, "resolve_host", lambda host, port: ["169.254.169.254"])
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", lambda *a, **k: dialled.append(a))
    with pytest.raises(ActionFailed, match=r"169\.254\.169\.254"):
        _webhook("http://metadata.google.internal/computeMetadata/v1/", method="GET")
    assert dialled == []


def test_the_webhook_action_reaches_an_allowed_internal_endpoint(monkeypatch: pytest.MonkeyPatch,
                                                                  target: Listener) -> None:
    _allow(monkeypatch, "127.0.0.1/32")
    result = _webhook(target.url + "/hook", method="GET")
    assert result.port == "out" and target.hits == 1


# -- images fetched by URL for WeCom (mass sends, channel welcomes, messages with images) --------------------
class Recorder:
    """Replaces the socket layer under the guard: records the address a connection would go to."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dialled: list[tuple[str, int]] = []

        def connect_tcp(backend: Any, host: str, port: int, **kwargs: Any) -> httpcore.NetworkStream:
            self.dialled.append((host, port))
            raise httpcore.ConnectError("test: no packet leaves this machine")

        monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)


IMAGE_NAMES = {"img.intranet.example": ["10.1.2.3"], "metadata.example": ["169.254.169.254"],
               "cdn.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.7"]}


@pytest.mark.parametrize(("host", "address"), [("img.intranet.example", r"10\.1\.2\.3"),
                                               ("metadata.example", r"169\.254\.169\.254"),
                                               ("mixed.example", r"10\.0\.0\.7")])
def test_image_urls_resolving_to_private_or_metadata_addresses_are_refused_before_any_connection(
        monkeypatch: pytest.MonkeyPatch, host: str, address: str) -> None:
    import activities  # noqa: F401  (installs the guard for connectors)
    from connectors.wecom.api_errors import WeComRejected
    from connectors.wecom.media import fetch_image

    monkeypatch.setattr(outbound, "resolve_host", lambda name, port: IMAGE_NAMES[name])
    recorder = Recorder(monkeypatch)
    with pytest.raises(WeComRejected, match=address) as refused:
        fetch_image(f"https://{host}/poster.png")
    assert "image_hosts" in str(refused.value)  # says how to admit an intranet CDN on purpose
    assert recorder.dialled == []


def test_an_image_on_a_public_host_is_fetched_from_the_address_that_was_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import activities  # noqa: F401
    from connectors.wecom.api_errors import WeComRetryable
    from connectors.wecom.media import fetch_image

    monkeypatch.setattr(outbound, "resolve_host", lambda name, port: IMAGE_NAMES[name])
    recorder = Recorder(monkeypatch)
    with pytest.raises(WeComRetryable):  # the recorder connects nowhere
        fetch_image("https://cdn.example/poster.png")
    assert recorder.dialled == [("93.184.216.34", 443)]


def test_the_connectors_image_hosts_and_the_operator_allowlist_admit_internal_images(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import activities  # noqa: F401
    from connectors.wecom.api_errors import WeComRejected, WeComRetryable
    from connectors.wecom.media import fetch_image

    monkeypatch.setattr(outbound, "resolve_host", lambda name, port: IMAGE_NAMES[name])
    recorder = Recorder(monkeypatch)
    with pytest.raises(WeComRetryable):
        fetch_image("http://img.intranet.example/a.png", allowed_hosts=["10.1.2.0/24"])
    _allow(monkeypatch, "10.1.2.3/32")
    with pytest.raises(WeComRetryable):
        fetch_image("http://img.intranet.example/b.png")
    with pytest.raises(WeComRejected, match=r"169\.254\.169\.254"):  # admitted hosts do not widen to others
        fetch_image("http://metadata.example/c.png", allowed_hosts=["10.1.2.0/24"])
    assert recorder.dialled == [("10.1.2.3", 80), ("10.1.2.3", 80)]


def test_without_the_guard_installed_image_urls_are_refused_not_fetched(monkeypatch: pytest.MonkeyPatch,
                                                                        target: Listener) -> None:
    from connectors.wecom import media

    monkeypatch.setattr(media, "_fetcher", media._Fetcher())
    with pytest.raises(media.WeComRejected, match="outbound guard"):
        media.fetch_image(target.url + "/poster.png", allowed_hosts=["127.0.0.1"])
    assert target.hits == 0


def test_a_message_with_an_image_on_loopback_sends_nothing_and_fetches_nothing(target: Listener) -> None:
    """End to end through the WeCom connector's delivery, against the loopback WeCom: the image URL points at
    a loopback service (standing for the Temporal UI); it receives nothing, and nothing reaches WeCom."""
    import activities  # noqa: F401
    from connectors.base import OutboundMessage
    from connectors.wecom.api_errors import WeComRejected
    from connectors.wecom.client import WeComClient
    from connectors.wecom.delivery import deliver
    from connectors.wecom.media import WeComMedia
    from tests.connectors.fake_wecom import WECOM_SECRET, FakeWeCom, serve
    from tests.connectors.wecom_vectors import WECOM_CORP_ID

    fake = FakeWeCom()
    for wecom in serve(fake):
        client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=wecom.url, rate_per_second=1000)
        wecom.add_contact("wmCust1", "zhangsan")
        message = OutboundMessage(key="j/1/hello/1", channel="wecom", content="新品上架", customer={},
                                  identities={"wecom_external_userid": "wmCust1"},
                                  attachments=[f"{target.url}/api/v1/namespaces/poster.png"],
                                  options={"sender": "zhangsan"})
        with pytest.raises(WeComRejected, match="loopback"):
            deliver(client, message, media=WeComMedia(client))
        assert wecom.calls("media/upload") == [] and wecom.calls("add_msg_template") == []
    assert target.hits == 0


# -- the settlement payout webhook (its URL is in the flow) -------------------------------------------------
def test_the_settlement_payout_webhook_refuses_loopback_before_the_run_is_paid(
        db_url: str, target: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    from activities.settlement.nodes import SettlementPayout
    from engine.actions import Services, perform
    from engine.runtime import ActionRequest

    def request(url: str) -> ActionRequest:
        return ActionRequest(key="run/x/payout/1", workflow_id="run/x", flow_id="monthly", version=1,
                             node_id="payout", node_type="settlement.payout",
                             config={"method": "webhook", "webhook_url": url}, customer_id=None,
                             variables={"settlement_run_id": 404})

    # a permanent failure (the node's failed port, never retried), before the run is looked up or marked paid
    for url in (target.url + "/payouts", "http://2130706433:" + target.url.rsplit(":", 1)[1] + "/payouts"):
        with pytest.raises(ActionFailed, match=r"webhook_url refused: .*loopback"):
            perform(SettlementPayout, request(url), Services(database_url=db_url))
    monkeypatch.setattr(outbound, "resolve_host", lambda name, port: ["169.254.169.254"])
    recorder = Recorder(monkeypatch)
    with pytest.raises(ActionFailed, match=r"169\.254\.169\.254"):
        perform(SettlementPayout, request("http://payouts.bank.example/instruct"), Services(database_url=db_url))
    assert target.hits == 0 and recorder.dialled == []
