"""A captured WeCom callback cannot be replayed later (issue 18, item 6): its signed timestamp must be
within the window of this server's clock. Pushes are made the way WeCom makes them (tests/connectors/
fake_wecom.py encrypts and signs with the official sample's key material)."""

from __future__ import annotations

import time

import pytest

from connectors.base import InboundRequest
from connectors.errors import SignatureVerificationError
from connectors.wecom.connector import WeComConnector, WeComSecrets, WeComSettings
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    contact_event_xml,
    wecom_callback,
    wecom_url_check,
)

SECRETS = WeComSecrets.model_validate({"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})


def _inbound(method: str, query: dict[str, str], body: bytes = b"", **settings: int) -> object:
    request = InboundRequest(method, "/hooks/wecom", query, {"content-type": "text/xml"}, body)
    return WeComConnector().inbound(request, WeComSettings(corp_id=WECOM_CORP_ID, lookup_contacts=False, **settings),
                                    SECRETS)


def _push(at: int) -> tuple[dict[str, str], bytes]:
    push = wecom_callback(contact_event_xml("add_external_contact", "wmReplay01", "zhangsan", welcome_code="W"),
                          timestamp=at)
    return push.query, push.body


@pytest.mark.parametrize("offset", [-3600, -301, 301, 86_400])
def test_a_correctly_signed_callback_outside_the_window_is_refused(offset: int) -> None:
    query, body = _push(int(time.time()) + offset)
    with pytest.raises(SignatureVerificationError, match="replay"):
        _inbound("POST", query, body)


@pytest.mark.parametrize("offset", [-3600, 3600])
def test_a_stale_url_verification_is_refused(offset: int) -> None:
    query, _ = wecom_url_check("123", timestamp=int(time.time()) + offset)
    with pytest.raises(SignatureVerificationError, match="replay"):
        _inbound("GET", query)


def test_a_fresh_callback_and_wecoms_own_retries_are_accepted() -> None:
    query, body = _push(int(time.time()) - 20)  # a retry a few seconds later carries the same timestamp
    for _ in range(2):
        assert len(_inbound("POST", query, body).events) == 1  # type: ignore[attr-defined]


def test_the_window_is_a_setting() -> None:
    query, body = _push(int(time.time()) - 3600)
    assert len(_inbound("POST", query, body, max_clock_skew_seconds=7200).events) == 1  # type: ignore[attr-defined]


def test_a_forged_signature_is_refused_before_the_clock_is_looked_at() -> None:
    query, body = _push(int(time.time()) - 3600)
    with pytest.raises(SignatureVerificationError, match="does not match"):
        _inbound("POST", {**query, "msg_signature": "0" * 40}, body)
