"""JD (京东开放平台, JOS) connector. The protocol layer: API request signing."""

from connectors.jd.signing import (
    PARAM_JSON,
    canonical_string,
    format_timestamp,
    param_json,
    sign,
    system_params,
)

__all__ = ["PARAM_JSON", "canonical_string", "format_timestamp", "param_json", "sign", "system_params"]
