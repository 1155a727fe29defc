"""WXBizMsgCrypt (WeCom / WeChat OA safe mode) against the platforms' own published sample values.

Vector sources (inputs and outputs copied from the samples; none of their code is used):

* WECOM_2016 — the official WeCom callback sample, ``callback/Sample.py`` of the WeCom server-API
  Python SDK (github.com/sbzhu/weworkapi_python, also the download linked from
  developer.work.weixin.qq.com/document/path/90468): token ``hJqcu3uJ…``, CorpID ``ww1436e0e65a779aee``.
* WECOM_2014 — the same sample's older 企业号 values (token ``QDG6eK``, CorpID ``wx5823bf96d3bd56c7``),
  quoted in its comments (``GET /cgi-bin/wxpush?msg_signature=5c45ff5e…``) and used by the official C#
  sample ``Sample.cs`` (``sReqMsgSig = "477715d1…"``).
* WECHAT_OA — the WeChat Official Account 消息加解密 sample (token ``spamtest``, AppID
  ``wx2c2769f8efd9abc2``), as reproduced e.g. in the README of github.com/fotock/WXbizMsgCrypt-Node.
* WECHAT_OA_JAVA — the Official Account Java sample's ``WXBizMsgCryptTest.java`` (AppID
  ``wxb11529c136998cb6``, random prefix ``aaaabbbbccccdddd``): deterministic ciphertexts.
"""

from __future__ import annotations

import base64
import struct
import urllib.parse

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.wecom import (
    BadCiphertext,
    BadKey,
    ReceiveIdMismatch,
    SignatureMismatch,
    WeComCrypto,
    WeComCryptoError,
    compute_signature,
    decode_aes_key,
)
from connectors.wecom.crypto import PAD_BLOCK_SIZE

# --- WECOM_2016: official WeCom Python sample (callback/Sample.py) ------------------------------------
WECOM_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
WECOM_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
WECOM_CORP_ID = "ww1436e0e65a779aee"
WECOM_VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
}
WECOM_POST_SIG = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
WECOM_POST_TS = "1476422779"
WECOM_POST_NONCE = "1597212914"
WECOM_POST_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNsh"
    "w2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010w"
    "sHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjU"
    "QVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
WECOM_POST_BODY = (
    f"<xml><ToUserName><![CDATA[{WECOM_CORP_ID}]]></ToUserName>\n"
    f"<Encrypt><![CDATA[{WECOM_POST_ENCRYPT}]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)
WECOM_POST_PLAINTEXT = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)

# --- WECOM_2014: the older 企业号 values of the same sample / the C# sample -------------------------
QY_TOKEN = "QDG6eK"
QY_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
QY_CORP_ID = "wx5823bf96d3bd56c7"
QY_VERIFY_QUERY = (
    "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
    "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
)
QY_POST_SIG = "477715d11cdb4164915debcba66cb864d751f3e6"
QY_POST_TS = "1409659813"
QY_POST_NONCE = "1372623149"
QY_POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZ"
    "fJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAV"
    "GUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3"
    "KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

# --- WECHAT_OA: Official Account sample ---------------------------------------------------------------
OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_TOKEN = "spamtest"
OA_APPID = "wx2c2769f8efd9abc2"
OA_SIG = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
OA_TS = "1409735669"
OA_NONCE = "1320562132"
OA_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2"
    "LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6"
    "ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnif"
    "JpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLC"
    "zpu9GhglF2PE="
)

# --- WECHAT_OA_JAVA: deterministic encryption (WXBizMsgCryptTest.java) -------------------------------
JAVA_APPID = "wxb11529c136998cb6"
JAVA_RANDOM = b"aaaabbbbccccdddd"
JAVA_REPLY = "我是中文abcd123"
JAVA_CIPHER = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
JAVA_REPLY2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName>"
    "<![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]>"
    "</MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]>"
    "</MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]>"
    "</Description></Video></xml>"
)
JAVA_CIPHER2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweIm"
    "X9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+"
    "UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0"
    "nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdf"
    "akjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqm"
    "A7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQ"
    "DajPkdPrEeOwofJb"
)


@pytest.fixture
def wecom() -> WeComCrypto:
    return WeComCrypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORP_ID)


# --- published vectors -----------------------------------------------------------------------------


def test_official_wecom_verify_url(wecom: WeComCrypto) -> None:
    assert wecom.verify_url(**WECOM_VERIFY) == "1288432023552776189"


def test_official_wecom_signature_is_sha1_of_sorted_values() -> None:
    v = WECOM_VERIFY
    assert compute_signature(WECOM_TOKEN, v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]
    assert compute_signature(WECOM_TOKEN, int(v["timestamp"]), v["nonce"], v["echostr"]) == v["msg_signature"]


def test_official_wecom_decrypt_post(wecom: WeComCrypto) -> None:
    assert wecom.decrypt(WECOM_POST_SIG, WECOM_POST_TS, WECOM_POST_NONCE, WECOM_POST_ENCRYPT) == WECOM_POST_PLAINTEXT


def test_official_wecom_decrypt_callback_envelope(wecom: WeComCrypto) -> None:
    plaintext = wecom.decrypt_callback(WECOM_POST_SIG, WECOM_POST_TS, WECOM_POST_NONCE, WECOM_POST_BODY)
    assert "<Content>你好</Content>" in plaintext
    assert wecom.decrypt_callback(WECOM_POST_SIG, WECOM_POST_TS, WECOM_POST_NONCE, WECOM_POST_BODY.encode()) == (
        plaintext
    )


def test_official_qy_verify_url_from_the_raw_query_string() -> None:
    crypto = WeComCrypto(QY_TOKEN, QY_KEY, QY_CORP_ID)
    query = dict(urllib.parse.parse_qsl(QY_VERIFY_QUERY))  # percent-decodes the echostr exactly once
    assert crypto.verify_url(**query) == "1616140317555161061"


def test_official_qy_decrypt_post() -> None:
    crypto = WeComCrypto(QY_TOKEN, QY_KEY, QY_CORP_ID)
    plaintext = crypto.decrypt(QY_POST_SIG, QY_POST_TS, QY_POST_NONCE, QY_POST_ENCRYPT)
    assert plaintext.startswith("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>")
    assert "<Content><![CDATA[hello]]></Content>" in plaintext
    assert "<AgentID>218</AgentID>" in plaintext


def test_official_wechat_oa_decrypt() -> None:
    crypto = WeComCrypto(OA_TOKEN, OA_KEY, OA_APPID)
    plaintext = crypto.decrypt(OA_SIG, OA_TS, OA_NONCE, OA_ENCRYPT)
    assert "<Content><![CDATA[abcdteT]]></Content>" in plaintext
    assert "<MsgId>6054768590064713728</MsgId>" in plaintext


@pytest.mark.parametrize(("plaintext", "ciphertext"), [(JAVA_REPLY, JAVA_CIPHER), (JAVA_REPLY2, JAVA_CIPHER2)])
def test_official_java_sample_deterministic_encryption(plaintext: str, ciphertext: str) -> None:
    crypto = WeComCrypto("pamtest", OA_KEY, JAVA_APPID)
    encrypt, signature = crypto.encrypt(plaintext, "1409304348", "xxxxxx", random_prefix=JAVA_RANDOM)
    assert encrypt == ciphertext
    assert signature == compute_signature("pamtest", "1409304348", "xxxxxx", ciphertext)
    assert crypto.decrypt(signature, "1409304348", "xxxxxx", encrypt) == plaintext


def test_decode_aes_key_of_the_official_sample() -> None:
    key = decode_aes_key(OA_KEY)
    assert len(key) == 32
    assert key == base64.b64decode(OA_KEY + "=")


# --- round trips -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.text(),
    receive_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", max_size=20),
    timestamp=st.integers(min_value=0, max_value=2**32),
    nonce=st.text(alphabet="0123456789abcdef", min_size=1, max_size=16),
)
def test_round_trip(plaintext: str, receive_id: str, timestamp: int, nonce: str) -> None:
    crypto = WeComCrypto(WECOM_TOKEN, WECOM_KEY, receive_id)
    encrypt, signature = crypto.encrypt(plaintext, timestamp, nonce)
    assert len(base64.b64decode(encrypt)) % PAD_BLOCK_SIZE == 0
    assert crypto.decrypt(signature, str(timestamp), nonce, encrypt) == plaintext
    assert crypto.verify_url(signature, timestamp, nonce, encrypt) == plaintext


def test_encrypt_uses_a_fresh_random_prefix(wecom: WeComCrypto) -> None:
    first, _ = wecom.encrypt("same", "1", "n")
    second, _ = wecom.encrypt("same", "1", "n")
    assert first != second


def test_a_full_block_gets_a_full_block_of_padding() -> None:
    # 16 random + 4 length + 26 message + 18 receive id = 64 bytes, so 32 bytes of padding follow.
    crypto = WeComCrypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORP_ID)
    encrypt, signature = crypto.encrypt("a" * 26, "1", "n", random_prefix=bytes(16))
    assert len(base64.b64decode(encrypt)) == 96
    assert crypto.decrypt(signature, "1", "n", encrypt) == "a" * 26


def test_empty_receive_id_for_smart_robots() -> None:
    robot = WeComCrypto(WECOM_TOKEN, WECOM_KEY, "")
    encrypt, signature = robot.encrypt('{"msgtype":"text"}', "1700000000", "abc")
    assert robot.decrypt(signature, "1700000000", "abc", encrypt) == '{"msgtype":"text"}'


def test_random_prefix_must_be_16_bytes(wecom: WeComCrypto) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        wecom.encrypt("x", "1", "n", random_prefix=b"short")


# --- errors ----------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(SignatureMismatch, WeComCryptoError)
    assert issubclass(SignatureMismatch, SignatureVerificationError)
    assert issubclass(BadKey, ValueError)
    for cls in (BadKey, BadCiphertext, ReceiveIdMismatch, SignatureMismatch):
        assert issubclass(cls, ConnectorProtocolError)


@pytest.mark.parametrize("key", [WECOM_KEY[:-1], WECOM_KEY + "A", WECOM_KEY + "=", ""])
def test_bad_key_length(key: str) -> None:
    with pytest.raises(BadKey, match="exactly 43 characters") as info:
        WeComCrypto(WECOM_TOKEN, key, WECOM_CORP_ID)
    assert f"got {len(key)}" in str(info.value)


@pytest.mark.parametrize(("key", "position"), [("-" + WECOM_KEY[1:], 0), (WECOM_KEY[:10] + "_" + WECOM_KEY[11:], 10)])
def test_bad_key_alphabet_names_positions_not_the_key(key: str, position: int) -> None:
    with pytest.raises(BadKey, match=rf"positions \[{position}\]") as info:
        WeComCrypto(WECOM_TOKEN, key, WECOM_CORP_ID)
    assert key not in str(info.value)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        WeComCrypto("", WECOM_KEY, WECOM_CORP_ID)


def test_repr_hides_token_and_key(wecom: WeComCrypto) -> None:
    text = repr(wecom)
    assert WECOM_CORP_ID in text
    assert WECOM_TOKEN not in text
    assert WECOM_KEY not in text


def test_wrong_signature(wecom: WeComCrypto) -> None:
    bad = dict(WECOM_VERIFY, msg_signature="0" * 40)
    with pytest.raises(SignatureMismatch, match="Token") as info:
        wecom.verify_url(**bad)
    assert WECOM_VERIFY["msg_signature"] not in str(info.value)  # no signing oracle


def test_tampered_ciphertext_fails_the_signature_before_decryption(wecom: WeComCrypto) -> None:
    tampered = dict(WECOM_VERIFY, echostr="A" + WECOM_VERIFY["echostr"][1:])
    with pytest.raises(SignatureMismatch):
        wecom.verify_url(**tampered)


def test_wrong_token() -> None:
    crypto = WeComCrypto("another-token", WECOM_KEY, WECOM_CORP_ID)
    with pytest.raises(SignatureMismatch):
        crypto.verify_url(**WECOM_VERIFY)


def test_signature_comparison_ignores_hex_case_and_whitespace(wecom: WeComCrypto) -> None:
    upper = dict(WECOM_VERIFY, msg_signature=f" {WECOM_VERIFY['msg_signature'].upper()} ")
    assert wecom.verify_url(**upper) == "1288432023552776189"


def test_non_ascii_signature_is_a_mismatch_not_a_crash(wecom: WeComCrypto) -> None:
    with pytest.raises(SignatureMismatch):
        wecom.verify_url(**dict(WECOM_VERIFY, msg_signature="签名"))


def test_form_decoded_plus_gets_a_hint() -> None:
    crypto = WeComCrypto(QY_TOKEN, QY_KEY, QY_CORP_ID)
    # A framework that form-decodes ("+" -> " ") the already percent-decoded value breaks the signature.
    query = dict(urllib.parse.parse_qsl(QY_VERIFY_QUERY))
    query["echostr"] = query["echostr"].replace("+", " ")
    with pytest.raises(SignatureMismatch, match="form-decoded"):
        crypto.verify_url(**query)


def test_receive_id_mismatch_names_both_ids() -> None:
    crypto = WeComCrypto(WECOM_TOKEN, WECOM_KEY, "ww0000000000000000")
    with pytest.raises(ReceiveIdMismatch) as info:
        crypto.verify_url(**WECOM_VERIFY)
    assert WECOM_CORP_ID in str(info.value)
    assert "ww0000000000000000" in str(info.value)


def _raw_encrypt(key: str, block: bytes) -> str:
    aes_key = decode_aes_key(key)
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
    return base64.b64encode(encryptor.update(block) + encryptor.finalize()).decode()


def _signed(crypto: WeComCrypto, encrypt: str) -> tuple[str, str, str, str]:
    return crypto.signature("1", "n", encrypt), "1", "n", encrypt


@pytest.mark.parametrize(
    ("encrypt", "message"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"x" * 15).decode(), "not a non-zero multiple"),
        ("", "not a non-zero multiple"),
    ],
)
def test_bad_ciphertext_shape(wecom: WeComCrypto, encrypt: str, message: str) -> None:
    with pytest.raises(BadCiphertext, match=message):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_bad_padding_points_at_the_aes_key(wecom: WeComCrypto) -> None:
    encrypt = _raw_encrypt(WECOM_KEY, bytes(32))  # last byte 0: never valid PKCS#7
    with pytest.raises(BadCiphertext, match="EncodingAESKey does not match"):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_inconsistent_padding_bytes(wecom: WeComCrypto) -> None:
    encrypt = _raw_encrypt(WECOM_KEY, bytes(28) + b"\x01\x02\x03\x04")
    with pytest.raises(BadCiphertext, match="padding"):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_message_shorter_than_its_header(wecom: WeComCrypto) -> None:
    encrypt = _raw_encrypt(WECOM_KEY, bytes(16) + b"\x10" * 16)  # unpads to 16 bytes
    with pytest.raises(BadCiphertext, match="20-byte header"):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_length_prefix_beyond_the_block(wecom: WeComCrypto) -> None:
    block = bytes(16) + struct.pack(">I", 1000) + b"abc"
    encrypt = _raw_encrypt(WECOM_KEY, block + bytes([32 - len(block)]) * (32 - len(block)))
    with pytest.raises(BadCiphertext, match="claims 1000 bytes"):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_message_that_is_not_utf8(wecom: WeComCrypto) -> None:
    block = bytes(16) + struct.pack(">I", 2) + b"\xff\xfe" + WECOM_CORP_ID.encode()
    amount = 32 - len(block) % 32
    encrypt = _raw_encrypt(WECOM_KEY, block + bytes([amount]) * amount)
    with pytest.raises(BadCiphertext, match="UTF-8"):
        wecom.decrypt(*_signed(wecom, encrypt))


def test_wrong_aes_key_with_right_token_is_a_crypto_error() -> None:
    sender = WeComCrypto(WECOM_TOKEN, OA_KEY, WECOM_CORP_ID)
    receiver = WeComCrypto(WECOM_TOKEN, WECOM_KEY, WECOM_CORP_ID)
    encrypt, signature = sender.encrypt("hello", "1", "n", random_prefix=bytes(16))
    with pytest.raises(WeComCryptoError):
        receiver.decrypt(signature, "1", "n", encrypt)
