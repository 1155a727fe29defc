"""ISO 8601 durations (``PT30M``, ``P1D``, ``P1W``) as used in flow documents.

Months and years are refused on purpose: their length depends on the calendar,
so a journey that says "wait P1M" would mean different things on different
days. Use ``P30D`` or a ``wait.until`` on a date instead.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class DurationError(ValueError):
    """A duration string that is not ISO 8601."""


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``P1DT2H`` into a timedelta."""
    if not isinstance(text, str):
        raise DurationError(f"expected an ISO 8601 duration string such as 'P1D', got {type(text).__name__}")
    value = text.strip().upper()
    if re.search(r"^P[^T]*\d+[MY]", value):
        raise DurationError(f"'{text}': months and years have no fixed length; write days instead, e.g. 'P30D'")
    match = _PATTERN.match(value)
    if not match:
        raise DurationError(f"'{text}' is not an ISO 8601 duration; write e.g. 'PT30M', 'P1D' or 'P1DT12H'")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    result = timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )
    if result <= timedelta(0):
        raise DurationError(f"'{text}' is zero; a duration must be longer than zero")
    return result
