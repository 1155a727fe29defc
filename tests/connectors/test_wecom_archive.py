"""The Finance SDK boundary (connectors/wecom/archive.py): the real native library loads here; RSA with
several key versions; pages, failures and media chunks against the SDK double."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization

from connectors.wecom.archive import (
    ArchiveDecryptError,
    ArchiveRejected,
    ArchiveRetryable,
    IsolatedSdk,
    Keyring,
    fetch_media,
    load_private_key,
    pull_page,
    readable_text,
)
from designer.i18n import translate
from tests.connectors.finance_sdk_double import FinanceSdkDouble, key_pair, private_pem
from wording import message_of

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_official_library_loads_and_decrypt_errors_map() -> None:
    """The native libWeWorkFinanceSdk_C.so (from the pywecomarchive wheel) is loaded — in a child process,
    because it aborts a process that already holds google-re2 or other libraries sharing its symbols —
    a handle made and initialised, and DecryptData (local, no WeCom needed) answers a bad message with its
    SDK error code, which becomes our ArchiveDecryptError."""
    sdk = IsolatedSdk("ww1436e0e65a779aee", "archive-secret")
    try:
        assert "secret" not in repr(sdk)
        with pytest.raises(ArchiveDecryptError, match=r"10008|10006|10000") as refused:
            sdk.decrypt_data("0123456789abcdef0123456789abcdef", base64.b64encode(b"not a message").decode())
        # the child's Msg crossed the pipe as its stored form (wording.stored): still a template with values
        said = message_of(refused.value)
        assert said.template != "%(detail)s" and "%(" in said.template and str(said) == str(refused.value)
        assert CJK.search(translate(said, "zh-CN")) and not CJK.search(translate(said, "en"))
        with pytest.raises(ValueError, match=r"1\.\.1000"):
            sdk.get_chat_data(0, 1001)  # refused before anything reaches the SDK (or WeCom)
        child = sdk._proc
        assert child is not None and child.is_alive()
        # the native code aborts its process on some malformed input (std::out_of_range): the child ends,
        # not us, the record is set aside (not retried for ever), and the next call starts a new child
        with pytest.raises(ArchiveDecryptError, match="aborted"):
            sdk.decrypt_data("0123456789abcdef0123456789abcdef", base64.b64encode(b"x").decode())
        assert not child.is_alive()
        with pytest.raises(ArchiveDecryptError, match=r"10008|10006|10000"):
            sdk.decrypt_data("0123456789abcdef0123456789abcdef", base64.b64encode(b"not a message").decode())
        assert sdk._proc is not child and sdk._proc.is_alive()
    finally:
        sdk.close()
    with pytest.raises(ValueError, match="Secret"):
        IsolatedSdk("ww1436e0e65a779aee", "")


def test_keyring_uses_the_version_of_each_record() -> None:
    double = FinanceSdkDouble()
    old = double.text("zhangsan", ["wmC1"], "旧密钥加密的消息", version=1)
    new = double.text("wmC1", ["zhangsan"], "新密钥加密的消息", version=2)
    both = Keyring.from_pems({1: private_pem(1), 2: private_pem(2)})
    page = pull_page(double, both, 0)
    assert [m.text for m in page.messages] == ["旧密钥加密的消息", "新密钥加密的消息"]
    assert page.last_seq == new.seq and [m.publickey_ver for m in page.messages] == [1, 2]
    assert "PRIVATE" not in repr(both) and repr(both) == "Keyring(versions=[1, 2])"
    only_new = Keyring.from_pems({2: private_pem(2)})
    page = pull_page(double, only_new, 0)
    assert [m.msgid for m in page.messages] == [new.msgid]
    (record, why, missing), = page.failed
    assert record.msgid == old.msgid and missing and "version 1" in why
    # the wrong key for a version is refused, not mis-decrypted
    swapped = Keyring.from_pems({1: private_pem(2), 2: private_pem(1)})
    assert len(pull_page(double, swapped, 0).failed) == 2


def test_private_keys_in_the_forms_wecom_shows_them() -> None:
    key, pem = key_pair(1)
    body = "".join(pem.strip().splitlines()[1:-1])
    assert load_private_key(body).private_numbers() == key.private_numbers()  # the bare base64 of the admin page
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    assert load_private_key(pkcs8).private_numbers() == key.private_numbers()
    with pytest.raises(ValueError, match="not an RSA private key") as caught:
        load_private_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----")
    assert "AAAA" not in str(caught.value)


def test_pages_limits_and_sdk_errors() -> None:
    double = FinanceSdkDouble()
    for i in range(5):
        double.text("zhangsan", ["wmC1"], f"第{i}条")
    ring = Keyring.from_pems({1: private_pem(1)})
    first = pull_page(double, ring, 0, limit=3)
    second = pull_page(double, ring, first.last_seq, limit=3)
    assert [m.text for m in first.messages + second.messages] == [f"第{i}条" for i in range(5)]
    assert pull_page(double, ring, second.last_seq).fetched == 0
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        pull_page(double, ring, 0, limit=1001)
    double.fail_next(10001)
    with pytest.raises(ArchiveRetryable):
        pull_page(double, ring, 0)
    double.fail_next(10009)
    with pytest.raises(ArchiveRejected, match="trusted IPs"):
        pull_page(double, ring, 0)


def test_media_in_chunks() -> None:
    double = FinanceSdkDouble(chunk_size=1000)
    data = bytes(range(256)) * 20  # 5,120 bytes: 6 chunks
    record = double.image("wmC1", ["zhangsan"], data)
    message = pull_page(double, Keyring.from_pems({1: private_pem(1)}), 0).messages[0]
    assert message.msgtype == "image" and message.text == ""
    (fileid,) = message.sdkfileids
    got = b"".join(fetch_media(double, fileid))
    assert got == data and hashlib.md5(got).hexdigest() == message.body["image"]["md5sum"]  # noqa: S324
    assert [c[1] for c in double.calls if c[0] == "GetMediaData"][:3] == ["", "Range:bytes=1000-1999",
                                                                         "Range:bytes=2000-2999"]
    with pytest.raises(ArchiveRejected, match="larger than"):
        list(fetch_media(double, fileid, max_bytes=2000))
    assert record.publickey_ver == 1


def test_readable_text_is_what_a_person_reads() -> None:
    link = {"msgtype": "link", "link": {"title": "限时返现", "description": "点开领取", "link_url": "https://x.example/返现",
                                        "image_url": "https://x.example/i.png"}}
    assert readable_text("link", link) == "限时返现\n点开领取"
    mixed = {"msgtype": "mixed", "mixed": {"item": [{"type": "text", "content": '{"content":"加我vx"}'},
                                                    {"type": "image", "content": '{"sdkfileid":"abc"}'}]}}
    assert readable_text("mixed", mixed) == "加我vx"
    packet = {"msgtype": "redpacket", "redpacket": {"type": 1, "wish": "恭喜发财", "totalcnt": 1, "totalamount": 3000}}
    assert readable_text("redpacket", packet) == "恭喜发财"
