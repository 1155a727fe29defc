"""The sidebar's WeCom app comes from the configured WeCom connector; library images go out as WeCom media,
uploaded once per 2½ days — against the fake qyapi.weixin.qq.com."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from activities.sidebar import library
from activities.sidebar.context import use_script
from activities.sidebar.scripts import ScriptSpec
from activities.sidebar.wecom import NotConfigured, media_for, sidebar_app
from connectors.wecom.jsapi import reset_shared_apps
from engine import connectors
from engine.db import models
from engine.db.session import transaction
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom, serve
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    reset_shared_apps()
    yield from serve(FakeWeCom())
    reset_shared_apps()


def _configure(db_url: str, fake: FakeWeCom, agent_id: int | None) -> None:
    with transaction(db_url) as db:
        connectors.save(db, "wecom-main", "wecom", "企业微信", {
            "corp_id": WECOM_CORP_ID, "agent_id": agent_id, "api_base": fake.url, "oauth_base": fake.url},
            {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": "contact-secret",
             "app_secret": WECOM_SECRET})


def test_the_sidebar_runs_as_the_connector_app_and_sends_images_as_media(db_url: str, fake: FakeWeCom) -> None:
    _configure(db_url, fake, None)
    with transaction(db_url) as db, pytest.raises(NotConfigured, match="agent_id"):
        sidebar_app(db)
    _configure(db_url, fake, SIDEBAR_AGENT_ID)
    with transaction(db_url) as db:
        sidebar = sidebar_app(db)
        assert (sidebar.corp_id, sidebar.agent_id, sidebar.oauth_base) == (WECOM_CORP_ID, SIDEBAR_AGENT_ID, fake.url)
        # the app secret, not the 客户联系 one, gets the token the tickets are fetched with
        signature = sidebar.app.agent_config_signature("https://scrm.example.com/sidebar")
        assert fake.verify_signature("agent", signature.url, signature.timestamp, signature.nonce_str,
                                     signature.signature) == ""
        assert fake.calls("gettoken")[0].query["corpsecret"] == WECOM_SECRET
        marketer = models.User(username="mk", password_hash="x", role="marketer", failed_logins=0)
        db.add(marketer)
        db.flush()
        image = library.store_image(db, marketer, PNG)
        script = library.create_script(db, marketer, ScriptSpec(kind="image", title="价目表", image_id=image.id), NOW)
        sent = [use_script(db, marketer, script.id, when, customer_id=None, chat_id="wrChat",
                           media_for=media_for(db, sidebar, when))["message"]["image"]["mediaid"]
                for when in (NOW, NOW + timedelta(days=1), NOW + timedelta(days=2, hours=13))]
    assert sent[0] == sent[1] != sent[2]  # re-uploaded once the 3-day media got old
    assert len(fake.calls("media/upload")) == 2 and fake.media[sent[0]] == PNG
    assert not fake.problems
