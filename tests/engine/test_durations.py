"""ISO 8601 durations as flows write them (engine.durations)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.durations import DurationError, format_duration, from_amount, parse_duration, to_amount


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


# -- the duration widget: number + unit ⇄ ISO 8601 ----------------------------------------------------------
@pytest.mark.parametrize(("text", "shown", "back"), [
    ("P7D", ("7", "days"), "P7D"),
    ("PT30M", ("30", "minutes"), "PT30M"),
    ("P1DT2H", ("26", "hours"), "P1DT2H"),
    ("PT2H", ("2", "hours"), "PT2H"),
    ("PT90M", ("90", "minutes"), "PT1H30M"),
    ("P1W", ("7", "days"), "P7D"),
    ("P2DT30M", ("2910", "minutes"), "P2DT30M"),
    ("PT45S", ("45", "seconds"), "PT45S"),
    ("PT1.5S", ("1.5", "seconds"), "PT1.5S"),
])
def test_the_widget_shows_a_duration_in_its_largest_whole_unit_and_writes_it_back(
        text: str, shown: tuple[str, str], back: str) -> None:
    assert to_amount(text) == shown
    assert from_amount(*shown) == back
    assert parse_duration(back) == parse_duration(text)


@pytest.mark.parametrize(("number", "unit", "expected"), [
    ("1.5", "hours", "PT1H30M"), ("0.1", "hours", "PT6M"), ("2", "weeks", "P14D"), ("36", "hours", "P1DT12H"),
    ("1,440", "minutes", "P1D"), (" 3 ", "days", "P3D"),
])
def test_what_a_person_types_becomes_iso_8601(number: str, unit: str, expected: str) -> None:
    assert from_amount(number, unit) == expected


@pytest.mark.parametrize(("number", "unit", "message"), [
    ("0", "days", "longer than zero"), ("-1", "days", "not a number"), ("seven", "days", "not a number"),
    ("1e3", "days", "not a number"), ("3", "months", "unknown unit"), ("4000", "days", "ten years"),
    ("9" * 40, "days", "not a number"),
])
def test_what_cannot_be_a_duration_is_refused_with_the_reason(number: str, unit: str, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        from_amount(number, unit)


def test_the_canonical_text_is_what_the_iso_grammar_parses_back() -> None:
    for seconds in (1, 59, 60, 61, 3599, 3600, 86399, 86400, 90061, 7 * 86400 + 1):
        value = timedelta(seconds=seconds)
        assert parse_duration(format_duration(value)) == value
    assert format_duration(timedelta(days=1, hours=2)) == "P1DT2H"
    with pytest.raises(DurationError):
        format_duration(timedelta(0))


# -- preview offsets as people read them ---------------------------------------------------------------------
def test_a_preview_offset_reads_as_a_day_and_a_clock() -> None:
    from engine.simulate import day_and_clock, day_label, offset_of

    assert day_label(7.31 * 86400) == "day 7, 07:26"  # what used to print as "day 7.31"
    assert day_and_clock(0) == (0, "00:00") and day_and_clock(86400 - 0.5) == (0, "23:59")
    assert day_and_clock(3 * 86400) == (3, "00:00") and day_and_clock(30 * 86400 + 61) == (30, "00:01")
    for text in ("day 3, 07:26", "day 3 07:26", "DAY 3,07:26"):  # what the timeline prints is a valid script time
        assert offset_of(text) == timedelta(days=3, hours=7, minutes=26)
    assert offset_of("day 3") == timedelta(days=3) and offset_of("P3DT2H") == timedelta(days=3, hours=2)
    with pytest.raises(ValueError):
        offset_of("day 3, 25:00")
