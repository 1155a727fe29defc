"""WeChat Official Account: the URL signature and the safe-mode alias.

Vector: the Official Account 消息加解密 sample values (token ``spamtest``, timestamp ``1409735669``,
nonce ``1320562132``; see wecom_vectors.py). The matching URL ``signature``
``16120ec1b8dbb870f510d87ce6bc2463eae6ca1a`` is the value public test suites pair with them (e.g. a
WeChat-platform test in the code search corpus); it is a third-party value, and re-derivable as
SHA1("1320562132" + "1409735669" + "spamtest").
"""

from __future__ import annotations

import pytest

from connectors.errors import SignatureVerificationError
from connectors.wechat_oa import WeChatOACrypto, compute_url_signature, verify_url_signature
from connectors.wecom import WeComCrypto

SIGNATURE = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"


def test_url_signature_vector() -> None:
    assert compute_url_signature("spamtest", "1409735669", "1320562132") == SIGNATURE
    assert compute_url_signature("spamtest", 1409735669, "1320562132") == SIGNATURE


def test_verify_url_signature() -> None:
    verify_url_signature("spamtest", SIGNATURE, "1409735669", "1320562132")
    verify_url_signature("spamtest", SIGNATURE.upper(), "1409735669", "1320562132")


@pytest.mark.parametrize(
    ("token", "signature", "nonce"),
    [("other", SIGNATURE, "1320562132"), ("spamtest", "0" * 40, "1320562132"), ("spamtest", SIGNATURE, "1")],
)
def test_url_signature_mismatch(token: str, signature: str, nonce: str) -> None:
    with pytest.raises(SignatureVerificationError, match="服务器配置"):
        verify_url_signature(token, signature, "1409735669", nonce)


def test_safe_mode_is_the_wecom_scheme_with_the_appid() -> None:
    assert WeChatOACrypto is WeComCrypto
    crypto = WeChatOACrypto("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    encrypt, signature = crypto.encrypt("<xml><Content>hi</Content></xml>", "1409735669", "1320562132")
    assert crypto.decrypt(signature, "1409735669", "1320562132", encrypt) == "<xml><Content>hi</Content></xml>"
