"""Taobao / Tmall (淘宝开放平台, TOP) connector. The protocol layer: API request signing."""

from connectors.taobao.signing import SIGN_METHODS, canonical_string, format_timestamp, now_timestamp, sign

__all__ = ["SIGN_METHODS", "canonical_string", "format_timestamp", "now_timestamp", "sign"]
