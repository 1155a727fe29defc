"""抖店 (Douyin shop) connector: API request signing and push verification (``signing``), push parsing and
normalising to canonical order/refund events (``inbound``), the open API client (``client``) and the
connector (``connector``)."""

from connectors.douyin.signing import (
    DouyinSignatureError,
    compute_event_sign,
    marshal_param_json,
    sign_request,
    string_to_sign,
    verify_event_sign,
)

__all__ = [
    "DouyinSignatureError",
    "compute_event_sign",
    "marshal_param_json",
    "sign_request",
    "string_to_sign",
    "verify_event_sign",
]
