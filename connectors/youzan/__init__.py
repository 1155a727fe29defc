"""Youzan (有赞云) connector. The protocol layer: push verification."""

from connectors.youzan.signing import YouzanSignatureError, compute_event_sign, verify_event_sign

__all__ = ["YouzanSignatureError", "compute_event_sign", "verify_event_sign"]
