"""抖店 request signing and push verification.

抖店 publishes no input/output vector (its guide points to an online signing tool), so:

* the ``param_json`` serialisation is checked against the guide's own example value
  ``"&<>='/ô汉😀"`` ("附加符号、中日韩、Emoji都不转义" — in the guide's Go/Java/PHP samples, e.g. the PHP
  ``marshal`` with ``JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE`` after a recursive ``ksort``);
* the string to sign is pinned literally, with the guide's example app_key ``3409409348479354011``,
  method ``product.getGoodsCategory`` and param_json ``{"cid":"12","page":"1"}``;
* digests are pinned with values from an independent implementation, e.g.
  ``printf '%s' "$STRING" | openssl dgst -sha256 -hmac "$APP_SECRET"``;
* the push digest's concatenation order is pinned with the RFC 1321 MD5 test suite:
  MD5("message digest") = f96b697d7cb7938d525a2f31aaf161d0.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from connectors.douyin import (
    DouyinSignatureError,
    compute_event_sign,
    marshal_param_json,
    sign_request,
    string_to_sign,
    verify_event_sign,
)
from connectors.errors import SignatureVerificationError

APP_KEY = "3409409348479354011"
APP_SECRET = "d4c3b2a1-0000-4f5e-8a9b-abcdefabcdef"
METHOD = "product.getGoodsCategory"
PARAM_JSON = '{"cid":"12","page":"1"}'
TIMESTAMP = 1600152493  # 2020-09-15 14:48:13 GMT+8, the guide's example time
STRING_TO_SIGN = (
    f"{APP_SECRET}app_key{APP_KEY}methodproduct.getGoodsCategoryparam_json"
    '{"cid":"12","page":"1"}timestamp1600152493v2' + APP_SECRET
)
HMAC_SIGN = "fc4110280876a8d7d300f678c8ac7bc9578c1022b5e59fa557879fba5d06a59e"  # openssl dgst -sha256 -hmac
MD5_SIGN = "fb9737b8a3e658e2082dfffc52f46687"  # openssl dgst -md5

PUSH_BODY = (
    b'{"tag":"101","msg_id":"7010000000000000000","data":"{\\"p_id\\":4870000000000000000,\\"order_status\\":2}"}'
)
PUSH_SIGN = "e762eec70b8bafe0a3a15528f3333744"  # openssl dgst -md5 over app_key + body + app_secret


def _sign(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "method": METHOD,
        "param_json": PARAM_JSON,
        "timestamp": TIMESTAMP,
    }
    args.update(overrides)
    return sign_request(**args)


# --- param_json ------------------------------------------------------------------------------------


def test_marshal_the_guides_example_without_escaping() -> None:
    params = {
        "batch_encrypt_list": [
            {"plain_text": "&<>='/ô汉😀", "auth_id": "12345", "is_support_index": False, "sensitive_type": 2}
        ]
    }
    assert marshal_param_json(params) == (
        '{"batch_encrypt_list":[{"auth_id":"12345","is_support_index":false,'
        '"plain_text":"&<>=\'/ô汉😀","sensitive_type":2}]}'
    )


def test_marshal_sorts_nested_objects_and_keeps_list_order() -> None:
    params = {"b": {"z": 1, "a": 2}, "a": [{"y": 1, "x": 2}, 3, 1]}
    assert marshal_param_json(params) == '{"a":[{"x":2,"y":1},3,1],"b":{"a":2,"z":1}}'


def test_marshal_empty() -> None:
    assert marshal_param_json({}) == "{}"


def test_marshal_matches_the_guides_param_json_example() -> None:
    assert marshal_param_json({"page": "1", "cid": "12"}) == PARAM_JSON


# --- request signing -------------------------------------------------------------------------------


def test_string_to_sign() -> None:
    text = string_to_sign(
        app_key=APP_KEY, app_secret=APP_SECRET, method=METHOD, param_json=PARAM_JSON, timestamp=TIMESTAMP
    )
    assert text == STRING_TO_SIGN


def test_hmac_sha256_sign() -> None:
    assert _sign() == HMAC_SIGN
    assert _sign(timestamp="1600152493") == HMAC_SIGN
    assert _sign(sign_method="hmac-sha256") == HMAC_SIGN


def test_legacy_md5_sign() -> None:
    assert _sign(sign_method="md5") == MD5_SIGN


def test_every_field_takes_part() -> None:
    for change in (
        {"app_key": "1"},
        {"app_secret": "x"},
        {"method": "order.searchList"},
        {"param_json": "{}"},
        {"timestamp": TIMESTAMP + 1},
        {"v": "1"},
    ):
        assert _sign(**change) != HMAC_SIGN, change


def test_old_style_datetime_timestamp_is_signed_as_sent() -> None:
    text = string_to_sign(app_key="k", app_secret="s", method="m", param_json="{}", timestamp="2020-09-15 14:48:13")
    assert text == "sapp_keykmethodmparam_json{}timestamp2020-09-15 14:48:13v2s"


def test_unknown_sign_method() -> None:
    with pytest.raises(ValueError, match="allowed: 'hmac-sha256', 'md5'"):
        _sign(sign_method=cast(Any, "sha1"))


# --- push verification -----------------------------------------------------------------------------


def test_event_sign_concatenation_order_rfc1321() -> None:
    assert compute_event_sign("message", "digest", b" ") == "f96b697d7cb7938d525a2f31aaf161d0"


def test_event_sign_vector() -> None:
    assert compute_event_sign(APP_KEY, APP_SECRET, PUSH_BODY) == PUSH_SIGN


def test_verify_event_sign() -> None:
    verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, PUSH_SIGN)
    verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, f" {PUSH_SIGN.upper()} ", app_id=APP_KEY)


@pytest.mark.parametrize(
    ("secret", "body", "event_sign"),
    [
        ("wrong-secret", PUSH_BODY, PUSH_SIGN),
        (APP_SECRET, PUSH_BODY.replace(b"101", b"102"), PUSH_SIGN),
        (APP_SECRET, PUSH_BODY + b"\n", PUSH_SIGN),
        (APP_SECRET, PUSH_BODY, ""),
        (APP_SECRET, PUSH_BODY, "非十六进制"),
    ],
)
def test_event_sign_mismatch(secret: str, body: bytes, event_sign: str) -> None:
    with pytest.raises(DouyinSignatureError, match="raw body") as info:
        verify_event_sign(APP_KEY, secret, body, event_sign)
    assert PUSH_SIGN not in str(info.value)
    assert APP_SECRET not in str(info.value)


def test_push_for_another_app() -> None:
    with pytest.raises(DouyinSignatureError, match="app-id '999'"):
        verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, PUSH_SIGN, app_id="999")


def test_error_is_a_signature_verification_error() -> None:
    assert issubclass(DouyinSignatureError, SignatureVerificationError)


PUSH_HMAC_SIGN = "24665e8ae7c28d96411f4f934cca1ac8086b5122395786c6b5e27b9323f7a82e"  # openssl dgst -sha256 -hmac


def test_event_sign_with_the_hmac_sha256_method() -> None:
    assert compute_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, "hmac-sha256") == PUSH_HMAC_SIGN
    verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, PUSH_HMAC_SIGN, method="hmac-sha256")
    with pytest.raises(DouyinSignatureError, match="HMAC-SHA256"):
        verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, PUSH_SIGN, method="hmac-sha256")
    with pytest.raises(DouyinSignatureError, match="MD5"):
        verify_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, PUSH_HMAC_SIGN)
    with pytest.raises(DouyinSignatureError, match="event-sign-method"):
        compute_event_sign(APP_KEY, APP_SECRET, PUSH_BODY, cast(Any, "sha1"))
