"""Taobao / Tmall (淘宝开放平台, TOP) connector: request signing (``signing``), the router client
(``client``), trades/refunds → canonical events (``orders``) and the polled ``taobao`` connector
(``connector``; see docs/connectors/taobao.md)."""

from connectors.taobao.signing import SIGN_METHODS, canonical_string, format_timestamp, now_timestamp, sign

__all__ = ["SIGN_METHODS", "canonical_string", "format_timestamp", "now_timestamp", "sign"]
