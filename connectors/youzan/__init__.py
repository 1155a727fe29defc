"""Youzan (有赞云) connector: push verification (``signing``), push parsing and normalising to canonical
order/refund events (``inbound``), the open API client (``client``) and the connector (``connector``)."""

from connectors.youzan.signing import YouzanSignatureError, compute_event_sign, verify_event_sign

__all__ = ["YouzanSignatureError", "compute_event_sign", "verify_event_sign"]
