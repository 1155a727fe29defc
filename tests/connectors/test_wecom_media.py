"""WeCom images go by an uploaded media id: the image is fetched (public hosts only, size-capped, JPG/PNG
by its bytes), uploaded with media/upload (multipart ``media``) to the loopback WeCom, cached, and uploaded
again before its 3 days end; media/uploadimg gives a permanent pic_url."""

from __future__ import annotations

import pytest

import activities  # noqa: F401  (installs the engine's SSRF guard for image fetches: engine/outbound.py)
from connectors.base import OutboundMessage
from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.client import WeComClient
from connectors.wecom.delivery import deliver
from connectors.wecom.media import REFRESH_BEFORE, TEMPORARY_MEDIA_SECONDS, WeComMedia
from tests.connectors.fake_wecom import WECOM_SECRET, FakeWeCom, fake_wecom
from tests.connectors.image_host import ImageHost, host, png
from tests.connectors.wecom_vectors import WECOM_CORP_ID

__all__ = ["fake_wecom", "host"]


class Clock:
    def __init__(self, fake: FakeWeCom) -> None:
        self.now = 1_800_000_000.0
        fake.now = self  # the fake stamps created_at with the same clock

    def __call__(self) -> float:
        return self.now


def test_an_image_message_is_sent_by_media_id_cached_and_refreshed_before_three_days(
        fake_wecom: FakeWeCom, host: ImageHost) -> None:
    clock = Clock(fake_wecom)
    client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000,
                         wall_clock=clock)
    media = WeComMedia(client, allowed_hosts=["127.0.0.1"], clock=clock)
    fake_wecom.add_contact("wmCust1", "zhangsan")
    url = f"{host.url}/poster.png"

    def send(key: str) -> str:
        return deliver(client, OutboundMessage(key=key, channel="wecom", content="新品上架", customer={},
                                               identities={"wecom_external_userid": "wmCust1"},
                                               attachments=[url], options={"sender": "zhangsan"}), media=media)

    send("j/1/hello/1")
    send("j/2/hello/1")  # within the 3 days: the cached id, no second upload
    clock.now += TEMPORARY_MEDIA_SECONDS - REFRESH_BEFORE + 1  # less than REFRESH_BEFORE left: upload again
    send("j/3/hello/1")
    assert media.uploads == 2 and host.fetched == ["/poster.png", "/poster.png"]  # (the token expired meanwhile:
    assert len(fake_wecom.calls("media/upload")) == 3  # one upload was answered 42001 and sent again, fresh token)
    sent = [call.body["attachments"] for call in fake_wecom.calls("add_msg_template")]
    ids = [a[0]["image"]["media_id"] for a in sent]
    assert ids[0] == ids[1] != ids[2] and all(i in fake_wecom.media for i in ids)
    assert fake_wecom.media[ids[0]] == png() and "pic_url" not in sent[0][0]["image"]
    assert fake_wecom.problems == []


def test_uploadimg_gives_a_permanent_pic_url_once(fake_wecom: FakeWeCom, host: ImageHost) -> None:
    client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000)
    media = WeComMedia(client, allowed_hosts=["127.0.0.1"])
    first = media.image_pic_url(f"{host.url}/poster.png")
    assert media.image_pic_url(f"{host.url}/poster.png") == first and fake_wecom.images[first] == png()
    assert len(fake_wecom.calls("media/uploadimg")) == 1


def test_images_that_cannot_be_sent_are_refused_before_anything_is_uploaded(
        fake_wecom: FakeWeCom, host: ImageHost) -> None:
    client = WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=1000)
    open_media = WeComMedia(client, allowed_hosts=["127.0.0.1"])
    with pytest.raises(WeComRejected, match="not a JPG or PNG"):
        open_media.image_media_id(f"{host.url}/notes.txt")
    with pytest.raises(WeComRejected, match="WeCom takes at most 10485760"):
        open_media.image_media_id(f"{host.url}/huge.png")
    with pytest.raises(WeComRejected, match="loopback"):
        WeComMedia(client).image_media_id(f"{host.url}/poster.png")  # not allow-listed: loopback is refused
    for url, problem in [("file:///etc/passwd", "not an http"), ("http://169.254.169.254/latest.png", "link-local"),
                         ("http://10.0.0.8/a.png", "private"), ("http://[::1]/a.png", "loopback")]:
        with pytest.raises(WeComRejected, match=problem):
            open_media.image_media_id(url)  # (tests/security/test_security_ssrf.py: names, rebinding, redirects)
    assert fake_wecom.calls("media/upload") == [] and host.fetched == ["/notes.txt", "/huge.png"]
