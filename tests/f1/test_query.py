"""The F1 contract's query syntax, read as a server must (contracts/f1-api.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from devstack.f1.query import QueryError, parse_query
from pipeworks.http import query_string

LAPS: list[dict[str, Any]] = [
    {"session_key": 9472, "driver_number": 1, "lap_number": n, "lap_duration": 95.0 + n / 10,
     "date_start": f"2024-03-02T15:0{n}:00.250000+00:00", "is_pit_out_lap": n == 2}
    for n in range(1, 6)
] + [{"session_key": 9472, "driver_number": 81, "lap_number": 1, "lap_duration": None,
      "date_start": None, "is_pit_out_lap": False},
     {"session_key": 9480, "driver_number": 4, "lap_number": 1, "lap_duration": 93.125,
      "date_start": "2024-03-09T17:03:00+03:00", "is_pit_out_lap": False}]


def laps(raw: str) -> list[tuple[int, int, int]]:
    return sorted((i["session_key"], i["driver_number"], i["lap_number"])
                  for i in parse_query(raw).select(LAPS))


def test_equalities_of_one_field_are_ored_and_fields_anded() -> None:
    assert laps("session_key=9480") == [(9480, 4, 1)]
    assert laps("driver_number=81&driver_number=4") == [(9472, 81, 1), (9480, 4, 1)]
    assert laps("session_key=9472&driver_number=81") == [(9472, 81, 1)]
    assert laps("session_key=1") == []


def test_the_operator_is_part_of_the_key() -> None:
    # `date_start>=v` arrives as key `date_start>` and value `v`; `<` with an empty value.
    assert laps("date_start>=2024-03-02T15:04:00.250000%2B00:00") == [
        (9472, 1, 4), (9472, 1, 5), (9480, 4, 1)]
    assert laps("date_start>2024-03-02T15:04:00.250000%2B00:00") == [(9472, 1, 5), (9480, 4, 1)]
    assert laps("date_start<2024-03-02T15:02:00.250000%2B00:00") == [(9472, 1, 1)]
    assert laps("date_start<=2024-03-02T15:02:00.250000%2B00:00") == [(9472, 1, 1),
                                                                      (9472, 1, 2)]
    # Keys are percent-decoded first.
    assert laps("date_start%3E=2024-03-02T15:04:00.250000%2B00:00") == laps(
        "date_start>=2024-03-02T15:04:00.250000%2B00:00")


def test_a_lower_and_an_upper_bound_form_an_interval_and_intervals_are_ored() -> None:
    assert laps("lap_number>=2&lap_number<=3&session_key=9472") == [(9472, 1, 2), (9472, 1, 3)]
    assert laps("lap_number>=2&lap_number<3&lap_number>4&session_key=9472") == [
        (9472, 1, 2), (9472, 1, 5)]


def test_values_are_typed_booleans_integers_decimals_timestamps_strings() -> None:
    assert laps("is_pit_out_lap=true") == [(9472, 1, 2)]
    assert laps("lap_duration>95.4") == [(9472, 1, 5)]
    assert laps("lap_duration=93.125") == [(9480, 4, 1)]
    # A timestamp without an offset is UTC; other offsets compare as the moment they are.
    assert laps("date_start>=2024-03-09T14:03:00") == [(9480, 4, 1)]
    assert laps("date_start>2024-03-09T14:03:00") == []
    query = parse_query("a=true&b=-3&c=2.50&d=2024-03-02T15:00:00%2B01:00&e=VER"
                        "&gmt_offset=03:00:00&team_colour=3671C6")
    assert [query.values_of(k)[0] for k in "abcde"] == [
        True, -3, Decimal("2.50"), datetime(2024, 3, 2, 14, tzinfo=UTC), "VER"]
    assert query.values_of("gmt_offset") == ["03:00:00"]
    assert query.values_of("team_colour") == ["3671C6"]


def test_an_unencoded_plus_is_a_space() -> None:
    # `+00:00` unencoded arrives as ` 00:00`: not a timestamp but a string.
    query = parse_query("date_start=2024-03-02T15:04:00.250000+00:00")
    assert query.values_of("date_start") == ["2024-03-02T15:04:00.250000 00:00"]
    assert query.select(LAPS) == []


def test_a_date_only_value_is_widened_to_whole_days() -> None:
    assert laps("date_start>2024-03-01") == laps("date_start>=2024-03-02T00:00:00%2B00:00")
    assert laps("date_start>2024-03-02") == [(9480, 4, 1)]  # from 2024-03-03T00:00
    assert laps("date_start<=2024-03-02") == [(9472, 1, n) for n in range(1, 6)]
    assert laps("date_start=2024-03-09") == [(9480, 4, 1)]


def test_a_field_the_item_lacks_or_a_null_matches_nothing() -> None:
    assert laps("date>=2024-01-01T00:00:00%2B00:00") == []  # laps have date_start
    assert (9472, 81, 1) not in laps("date_start<2030-01-01T00:00:00%2B00:00")
    assert (9472, 81, 1) not in laps("lap_duration<1000")


def test_what_the_kernel_client_sends_reads_back_as_meant() -> None:
    """The pipeline's own encoder (`pipeworks.http.query_string`) against this reader."""
    since = datetime(2024, 3, 2, 15, 4, 0, 250000, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=1)))  # an offset with a `+`: sent as %2B
    raw = query_string([("session_key", 9472), ("date_start>=", since),
                        ("lap_number<", 5)])
    assert laps(raw) == [(9472, 1, 4)]


def test_a_filter_without_a_field_is_refused() -> None:
    with pytest.raises(QueryError):
        parse_query("=3")
