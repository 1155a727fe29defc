"""JD (京东开放平台, JOS) connector: request signing (``signing``), the routerjson client (``client``),
orders/refund applications → canonical events (``orders``) and the polled ``jd`` connector
(``connector``; see docs/connectors/jd.md)."""

from connectors.jd.signing import (
    PARAM_JSON,
    canonical_string,
    format_timestamp,
    param_json,
    sign,
    system_params,
)

__all__ = ["PARAM_JSON", "canonical_string", "format_timestamp", "param_json", "sign", "system_params"]
