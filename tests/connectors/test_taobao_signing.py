"""TOP request signing against published vectors.

* TOP_DOC — the worked example of the TOP "API调用协议" page (open.taobao.com docId=101617, mirrored
  at developer.alibaba.com/docs/doc.htm?articleId=101617): secret ``helloworld`` →
  ``66987CB115214E59E6EC978214934FB8``.
* TOP_2013 — the older TOP doc example with app_key/secret ``test`` → ``72CB4D809B375A54502C09360D879C64``,
  as quoted in segmentfault.com/q/1010000002569107.
* ``hmac`` / ``hmac-sha256`` — TOP publishes no worked example, so the digest is pinned with RFC 2202
  (HMAC-MD5) and RFC 4231 (HMAC-SHA256) test case 2: key ``Jefe``, data "what do ya want for nothing?",
  fed in as one parameter whose name+value concatenation is exactly that data.
* UTF-8 — pinned with ``openssl dgst -md5`` over the concatenated string.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.taobao import SIGN_METHODS, canonical_string, format_timestamp, now_timestamp, sign

TOP_DOC_PARAMS = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}
TOP_DOC_SIGN = "66987CB115214E59E6EC978214934FB8"

RFC_PARAMS = {"what do ya want for nothing": "?"}


def test_top_doc_md5_vector() -> None:
    assert sign(TOP_DOC_PARAMS, "helloworld", "md5") == TOP_DOC_SIGN


def test_top_doc_canonical_string() -> None:
    assert canonical_string(TOP_DOC_PARAMS) == (
        "app_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethodtaobao.item.seller.get"
        "num_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00v2.0"
    )


def test_top_2013_md5_vector() -> None:
    params = {
        "method": "taobao.user.seller.get",
        "timestamp": "2013-05-06 13:52:03",
        "format": "xml",
        "app_key": "test",
        "v": "2.0",
        "fields": "nick",
        "sign_method": "md5",
        "session": "test",
    }
    assert sign(params, "test", "md5") == "72CB4D809B375A54502C09360D879C64"


def test_hmac_md5_is_rfc2202_hmac() -> None:
    assert sign(RFC_PARAMS, "Jefe", "hmac") == "750C783E6AB0B503EAA86E310A5DB738"


def test_hmac_sha256_is_rfc4231_hmac() -> None:
    expected = "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"
    assert sign(RFC_PARAMS, "Jefe", "hmac-sha256") == expected


def test_utf8_values() -> None:
    assert sign({"q": "连衣裙"}, "helloworld", "md5") == "D2EF5AF58A2B74BD9CA7FEFFEA1A0A8A"


def test_sign_and_empty_values_are_left_out() -> None:
    params: dict[str, str | None] = dict(TOP_DOC_PARAMS, sign="0123ABCD", empty="", missing=None)
    assert sign(params, "helloworld", "md5") == TOP_DOC_SIGN


def test_parameter_order_does_not_matter() -> None:
    reversed_params = dict(reversed(list(TOP_DOC_PARAMS.items())))
    assert sign(reversed_params, "helloworld", "md5") == TOP_DOC_SIGN


def test_every_value_takes_part() -> None:
    changed = dict(TOP_DOC_PARAMS, num_iid="11223345")
    assert sign(changed, "helloworld", "md5") != TOP_DOC_SIGN


@pytest.mark.parametrize("method", SIGN_METHODS)
def test_output_is_upper_case_hex(method: str) -> None:
    length = 64 if method == "hmac-sha256" else 32
    assert re.fullmatch(rf"[0-9A-F]{{{length}}}", sign(TOP_DOC_PARAMS, "helloworld", method))


@pytest.mark.parametrize("method", ["MD5", "sha1", "", "hmac_sha256"])
def test_unknown_sign_method_names_the_allowed_ones(method: str) -> None:
    with pytest.raises(ValueError, match="allowed: 'md5', 'hmac', 'hmac-sha256'"):
        sign(TOP_DOC_PARAMS, "helloworld", method)


def test_timestamp_is_gmt8() -> None:
    assert format_timestamp(datetime(2016, 1, 1, 4, 0, 0, tzinfo=UTC)) == "2016-01-01 12:00:00"
    tokyo = timezone(timedelta(hours=9))
    assert format_timestamp(datetime(2016, 1, 1, 13, 0, 0, tzinfo=tokyo)) == "2016-01-01 12:00:00"
    assert format_timestamp(datetime(2015, 12, 31, 20, 30, 5, tzinfo=UTC)) == "2016-01-01 04:30:05"


def test_timestamp_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2016, 1, 1, 12, 0, 0))


def test_now_timestamp_shape() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", now_timestamp())
