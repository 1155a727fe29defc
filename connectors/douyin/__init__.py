"""抖店 (Douyin shop) connector. The protocol layer: API request signing and push verification."""

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
