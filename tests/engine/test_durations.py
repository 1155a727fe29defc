"""ISO 8601 durations as flows write them (engine.durations)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT48H", timedelta(hours=48)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("P2W3D", timedelta(days=17)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT45S", timedelta(seconds=45)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("p7d", timedelta(days=7)),
        (" P14D ", timedelta(days=14)),
    ],
)
def test_parses_iso_8601(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P2Y3D", "P1Y2M3DT4H"])
def test_months_and_years_are_refused_with_advice(text: str) -> None:
    with pytest.raises(DurationError, match=r"no fixed length.*P30D"):
        parse_duration(text)


def test_minutes_are_not_mistaken_for_months() -> None:
    assert parse_duration("PT1M") == timedelta(minutes=1)
    assert parse_duration("P1DT1M") == timedelta(days=1, minutes=1)


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "1D", "30m", "P1.5D", "P-1D", "PT1H1H", "one day"])
def test_malformed_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(DurationError, match="not an ISO 8601 duration; write e"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P0D", "PT0S", "PT0H0M"])
def test_zero_is_refused(text: str) -> None:
    with pytest.raises(DurationError, match="zero"):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 86400, 1.5, ["P1D"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(DurationError, match="expected an ISO 8601 duration string"):
        parse_duration(value)  # type: ignore[arg-type]


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)
