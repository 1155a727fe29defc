"""WXBizMsgCrypt (WeCom / WeChat OA safe mode) against the platforms' own published sample values.

The vectors and where they come from: tests/connectors/wecom_vectors.py.
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
from tests.connectors.wecom_vectors import (
    JAVA_APPID,
    JAVA_CIPHER,
    JAVA_CIPHER2,
    JAVA_RANDOM,
    JAVA_REPLY,
    JAVA_REPLY2,
    OA_APPID,
    OA_ENCRYPT,
    OA_KEY,
    OA_NONCE,
    OA_SIG,
    OA_TOKEN,
    OA_TS,
    QY_CORP_ID,
    QY_KEY,
    QY_POST_ENCRYPT,
    QY_POST_NONCE,
    QY_POST_SIG,
    QY_POST_TS,
    QY_TOKEN,
    QY_VERIFY_QUERY,
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_POST_BODY,
    WECOM_POST_ENCRYPT,
    WECOM_POST_NONCE,
    WECOM_POST_PLAINTEXT,
    WECOM_POST_SIG,
    WECOM_POST_TS,
    WECOM_TOKEN,
    WECOM_VERIFY,
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
