"""JOS request signing against published vectors.

* JD_GUIDE — the worked example of the JD open platform developer guide
  (open.jd.com/v2/#/doc/dev-guide?listId=2643): app secret ``yourappSecret``, method
  ``jingdong.pop.order.search`` → ``D70825340F4084360B9362B60DFD7930``. The guide page itself could not
  be fetched here; the inputs and output were taken from a public repository's table of official
  platform vectors and reproduce byte for byte, which an MD5 cannot do by accident.
* JOS uses TOP's MD5 construction, so the TOP doc vector (see test_taobao_signing.py) must hold too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.jd import PARAM_JSON, canonical_string, format_timestamp, param_json, sign, system_params

GUIDE_BUSINESS = {
    "order_state": "WAIT_SELLER_STOCK_OUT",
    "page": "1",
    "page_size": "200",
    "start_date": None,
    "end_date": None,
    "optional_fields": None,
}
GUIDE_PARAM_JSON = (
    '{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1",'
    '"page_size":"200","start_date":null}'
)
GUIDE_PARAMS = {
    "method": "jingdong.pop.order.search",
    "access_token": "yourtoken",
    "app_key": "yourappkey",
    "timestamp": "2021-05-07 09:20:39.683+0800",
    "v": "2.0",
    PARAM_JSON: GUIDE_PARAM_JSON,
}
GUIDE_SIGN = "D70825340F4084360B9362B60DFD7930"


def test_guide_vector() -> None:
    assert sign(GUIDE_PARAMS, "yourappSecret") == GUIDE_SIGN


def test_guide_param_json_is_compact_and_sorted() -> None:
    assert param_json(GUIDE_BUSINESS) == GUIDE_PARAM_JSON


def test_guide_vector_through_system_params() -> None:
    params = system_params(
        app_key="yourappkey",
        method="jingdong.pop.order.search",
        business_params=GUIDE_BUSINESS,
        timestamp="2021-05-07 09:20:39.683+0800",
        access_token="yourtoken",
    )
    assert params == GUIDE_PARAMS
    assert sign(params, "yourappSecret") == GUIDE_SIGN


def test_360buy_param_json_sorts_first() -> None:
    assert canonical_string(GUIDE_PARAMS).startswith('360buy_param_json{"end_date"')


def test_same_md5_construction_as_top() -> None:
    top_doc = {
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
    assert sign(top_doc, "helloworld") == "66987CB115214E59E6EC978214934FB8"


def test_sign_and_empty_values_are_left_out() -> None:
    params: dict[str, str | None] = dict(GUIDE_PARAMS, sign="ABC", format="", extra=None)
    assert sign(params, "yourappSecret") == GUIDE_SIGN


def test_access_token_is_optional() -> None:
    params = system_params(app_key="k", method="m", business_params={}, timestamp="2021-01-01 00:00:00")
    assert "access_token" not in params
    assert params[PARAM_JSON] == "{}"
    assert params["v"] == "2.0"


def test_param_json_keeps_chinese_unescaped() -> None:
    assert param_json({"remark": "加急", "b": 1, "a": [3, 2]}) == '{"a":[3,2],"b":1,"remark":"加急"}'


def test_timestamps() -> None:
    moment = datetime(2021, 5, 7, 1, 20, 39, 683_999, tzinfo=UTC)
    assert format_timestamp(moment) == "2021-05-07 09:20:39"
    assert format_timestamp(moment, millis=True) == "2021-05-07 09:20:39.683+0800"  # the guide's format


def test_timestamp_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2021, 5, 7, 9, 20, 39))
