"""The WXBizMsgCrypt (WeCom / WeChat OA safe mode) vectors: the platforms' own published sample values,
checked by tests/connectors/test_wecom_crypto.py and used by the loopback WeCom and the inbound tests.

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
