"""Validators and preconditions: make_etag, parse_http_date, evaluate, if_range_allows."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.apps.static.conditions import (
    evaluate,
    if_range_allows,
    make_etag,
    parse_http_date,
)
from treadle.http import Headers, format_date

MTIME_S = 1_700_000_000
ETAG = make_etag(1234, MTIME_S * 10**9 + 123_456_789)
WEAK_ETAG = b"W/" + ETAG
OTHER = b'"something-else"'
LAST_MODIFIED = format_date(MTIME_S)
EARLIER = format_date(MTIME_S - 10)
LATER = format_date(MTIME_S + 10)

STRONG_ETAG_RE = re.compile(rb'"[\x21\x23-\x7e\x80-\xff]*"')


def headers(*pairs: tuple[str, bytes]) -> Headers:
    return Headers.from_pairs(pairs)


# --- make_etag ---------------------------------------------------------------------------


def test_make_etag_is_a_quoted_strong_tag_of_hex_fields() -> None:
    assert make_etag(0x1A4, 0x17B4C2A9D3E08F00) == b'"17b4c2a9d3e08f00-1a4"'
    assert make_etag(0x1A4, 0x10, ino=0xFF) == b'"ff-10-1a4"'
    assert make_etag(5, 7, coding="gzip") == b'"7-5.gzip"'
    assert STRONG_ETAG_RE.fullmatch(ETAG)


@pytest.mark.parametrize(
    "other",
    [
        make_etag(1235, MTIME_S * 10**9 + 123_456_789),
        make_etag(1234, MTIME_S * 10**9 + 123_456_790),
        make_etag(1234, MTIME_S * 10**9 + 123_456_789, ino=7),
        make_etag(1234, MTIME_S * 10**9 + 123_456_789, coding="br"),
    ],
)
def test_make_etag_changes_with_every_input(other: bytes) -> None:
    assert other != ETAG


@pytest.mark.parametrize(
    "args", [(-1, 0, 0, ""), (0, 0, -1, ""), (0, 0, 0, "GZIP"), (0, 0, 0, 'gz"ip')]
)
def test_make_etag_rejects_bad_input(args: tuple[int, int, int, str]) -> None:
    size_bytes, mtime_ns, ino, coding = args
    with pytest.raises(ValueError):
        make_etag(size_bytes, mtime_ns, ino, coding=coding)


# --- parse_http_date (RFC 9110 5.6.7) -----------------------------------------------------

SUN_06_NOV_1994 = 784_111_777  # 1994-11-06T08:49:37Z


@pytest.mark.parametrize(
    "value",
    [
        b"Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        b"Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        b"Sun Nov  6 08:49:37 1994",  # asctime, space-padded day
        b"Sun Nov 06 08:49:37 1994",  # asctime, two-digit day
        b"  Sun, 06 Nov 1994 08:49:37 GMT\t",  # surrounding OWS
        b"Mon, 06 Nov 1994 08:49:37 GMT",  # wrong day name: not checked
    ],
)
def test_parse_http_date_reads_all_three_forms(value: bytes) -> None:
    assert parse_http_date(value) == SUN_06_NOV_1994


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"yesterday",
        b"Sun, 06 Nov 1994 08:49:37",  # no GMT
        b"Sun, 06 Nov 1994 08:49:37 UTC",
        b"Sun, 06 Nov 1994 08:49:37 gmt",  # the grammar's names are case-sensitive
        b"sun, 06 Nov 1994 08:49:37 GMT",
        b"Sun, 06 nov 1994 08:49:37 GMT",
        b"Sun, 6 Nov 1994 08:49:37 GMT",  # day needs two digits
        b"Sun,  06 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 94 08:49:37 GMT",
        b"Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
        b"Sun, 00 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 0000 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nov 1994 08:60:00 GMT",
        b"Sun, 06 Nov 1994 08:49:61 GMT",
        b"Sun, 06 Nov 1994 8:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # a list
        b"Sun, 06-Nov-94 08:49:37 GMT",  # RFC 850 needs the long day name
        b"Sunday, 06-Nov-1994 08:49:37 GMT",
        b"Sun Nov 6 08:49:37 1994",  # asctime pads with a space
        b"Sun, \xff6 Nov 1994 08:49:37 GMT",
        b"Sun, \xd9\xa06 Nov 1994 08:49:37 GMT",  # a non-ASCII digit is no DIGIT
        b"1700000000",
    ],
)
def test_parse_http_date_rejects_what_is_not_a_date(value: bytes) -> None:
    assert parse_http_date(value) is None


def test_parse_http_date_leap_second_is_the_next_minute() -> None:
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:60 GMT") == SUN_06_NOV_1994 + 23


NOW_2025 = parse_http_date(b"Wed, 01 Jan 2025 00:00:00 GMT")


@pytest.mark.parametrize(
    ("two_digits", "now_s", "year"),
    [
        # RFC 9110 5.6.7: more than 50 years ahead means the previous century.
        (b"75", NOW_2025, 2075),
        (b"76", NOW_2025, 1976),
        (b"24", NOW_2025, 2024),
        (b"99", NOW_2025, 1999),
        (b"10", parse_http_date(b"Sat, 01 Jan 2090 00:00:00 GMT"), 2110),
        # Without now_s: the POSIX split at 69.
        (b"69", None, 1969),
        (b"68", None, 2068),
    ],
)
def test_parse_http_date_places_two_digit_years(
    two_digits: bytes, now_s: int | None, year: int
) -> None:
    value = b"Monday, 01-Jan-" + two_digits + b" 00:00:00 GMT"
    expected = parse_http_date(b"Mon, 01 Jan %d 00:00:00 GMT" % year)
    assert expected is not None
    assert parse_http_date(value, now_s=now_s) == expected


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=253_402_300_799))  # through 9999-12-31
def test_parse_http_date_reads_back_format_date(epoch_s: int) -> None:
    assert parse_http_date(format_date(epoch_s)) == epoch_s


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_parse_http_date_never_raises(value: bytes) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, int)


# --- evaluate (RFC 9110 13.2.2) ------------------------------------------------------------

PRECEDENCE_CASES = [
    # (method, fields, expected)
    (b"GET", [], None),
    # Step 1: If-Match, strong comparison.
    (b"GET", [("If-Match", ETAG)], None),
    (b"GET", [("If-Match", OTHER)], 412),
    (b"GET", [("If-Match", WEAK_ETAG)], 412),  # weak never matches strongly
    (b"GET", [("If-Match", b"*")], None),
    (b"PUT", [("If-Match", b"*")], None),
    (b"GET", [("If-Match", OTHER + b", " + ETAG)], None),
    (b"GET", [("If-Match", OTHER), ("If-Match", ETAG)], None),  # lines are one list
    (b"GET", [("If-Match", b"not-quoted")], 412),  # malformed: false, so 412
    (b"GET", [("If-Match", ETAG + b", bad")], 412),
    (b"GET", [("If-Match", b"*, " + ETAG)], 412),  # "*" in a list is invalid
    (b"GET", [("If-Match", b"")], None),  # an empty field is absent
    # If-Match beats If-Unmodified-Since, both ways.
    (b"GET", [("If-Match", ETAG), ("If-Unmodified-Since", EARLIER)], None),
    (b"GET", [("If-Match", OTHER), ("If-Unmodified-Since", LATER)], 412),
    # Step 2: If-Unmodified-Since (412 when modified after the date).
    (b"GET", [("If-Unmodified-Since", LATER)], None),
    (b"GET", [("If-Unmodified-Since", LAST_MODIFIED)], None),  # equal is unmodified
    (b"GET", [("If-Unmodified-Since", EARLIER)], 412),
    (b"PUT", [("If-Unmodified-Since", EARLIER)], 412),
    (b"GET", [("If-Unmodified-Since", b"garbage")], None),  # invalid: ignored
    (b"GET", [("If-Unmodified-Since", EARLIER), ("If-Unmodified-Since", EARLIER)], None),
    # Step 3: If-None-Match, weak comparison; 304 for GET/HEAD, 412 otherwise.
    (b"GET", [("If-None-Match", ETAG)], 304),
    (b"HEAD", [("If-None-Match", ETAG)], 304),
    (b"GET", [("If-None-Match", WEAK_ETAG)], 304),
    (b"POST", [("If-None-Match", ETAG)], 412),
    (b"PUT", [("If-None-Match", WEAK_ETAG)], 412),
    (b"DELETE", [("If-None-Match", b"*")], 412),
    (b"GET", [("If-None-Match", b"*")], 304),
    (b"GET", [("If-None-Match", OTHER)], None),
    (b"GET", [("If-None-Match", b'"a", W/"b" ,, ' + ETAG)], 304),
    (b"GET", [("If-None-Match", b'"a"'), ("If-None-Match", ETAG)], 304),
    (b"GET", [("If-None-Match", b'"a,b"')], None),  # a comma inside a tag is no separator
    (b"GET", [("If-None-Match", b"w/" + ETAG)], None),  # W/ is case-sensitive: malformed
    (b"GET", [("If-None-Match", ETAG[:-1])], None),  # unterminated: malformed
    (b"get", [("If-None-Match", ETAG)], 412),  # methods are case-sensitive
    # If-None-Match beats If-Modified-Since, even when it matches nothing or is malformed.
    (b"GET", [("If-None-Match", OTHER), ("If-Modified-Since", LATER)], None),
    (b"GET", [("If-None-Match", b"bad tag"), ("If-Modified-Since", LATER)], None),
    (b"GET", [("If-None-Match", ETAG), ("If-Modified-Since", EARLIER)], 304),
    # Step 4: If-Modified-Since, GET and HEAD only; 304 when not modified after the date.
    (b"GET", [("If-Modified-Since", LAST_MODIFIED)], 304),
    (b"HEAD", [("If-Modified-Since", LAST_MODIFIED)], 304),
    (b"GET", [("If-Modified-Since", LATER)], 304),  # later than mtime: still not modified
    (b"GET", [("If-Modified-Since", EARLIER)], None),
    (b"POST", [("If-Modified-Since", LATER)], None),  # ignored on POST
    (b"PUT", [("If-Modified-Since", LATER)], None),
    (b"GET", [("If-Modified-Since", b"Sun, 31 Feb 2024 00:00:00 GMT")], None),
    (b"GET", [("If-Modified-Since", LATER), ("If-Modified-Since", LATER)], None),
    (b"GET", [("If-Modified-Since", b"Tuesday, 14-Nov-23 22:13:30 GMT")], 304),
    (b"GET", [("If-Modified-Since", b"Tue Nov 14 22:13:30 2023")], 304),
    (b"GET", [("If-Modified-Since", b"Tue Nov 14 22:13:19 2023")], None),
    # Steps combined: the earlier step decides.
    (b"GET", [("If-Match", ETAG), ("If-None-Match", ETAG)], 304),
    (b"GET", [("If-Match", OTHER), ("If-None-Match", ETAG)], 412),
    (b"GET", [("If-Unmodified-Since", EARLIER), ("If-None-Match", ETAG)], 412),
    (b"GET", [("If-Unmodified-Since", EARLIER), ("If-Modified-Since", LATER)], 412),
    (b"GET", [("If-Unmodified-Since", LATER), ("If-Modified-Since", LATER)], 304),
    (b"POST", [("If-Match", ETAG), ("If-None-Match", OTHER)], None),
]


@pytest.mark.parametrize(("method", "fields", "expected"), PRECEDENCE_CASES)
def test_evaluate_follows_rfc_9110_13_2_2(
    method: bytes, fields: list[tuple[str, bytes]], expected: int | None
) -> None:
    assert evaluate(method, headers(*fields), ETAG, MTIME_S) == expected


def test_the_mtime_example_dates_are_what_the_table_assumes() -> None:
    assert parse_http_date(b"Tue Nov 14 22:13:20 2023") == MTIME_S


def test_evaluate_compares_a_weak_own_tag_weakly_only() -> None:
    weak = b'W/"v1"'
    assert evaluate(b"GET", headers(("If-None-Match", b'"v1"')), weak, MTIME_S) == 304
    assert evaluate(b"GET", headers(("If-Match", b'"v1"')), weak, MTIME_S) == 412


def test_evaluate_rejects_an_own_etag_that_is_not_one() -> None:
    with pytest.raises(ValueError):
        evaluate(b"GET", headers(), b"unquoted", MTIME_S)


def test_evaluate_places_rfc_850_years_with_now() -> None:
    fields = headers(("If-Modified-Since", b"Monday, 01-Jan-80 00:00:00 GMT"))
    mtime_1990 = 631_152_000
    assert evaluate(b"GET", fields, ETAG, mtime_1990, now_s=NOW_2025) is None  # 1980
    assert evaluate(b"GET", fields, ETAG, mtime_1990) is None  # 1980 without now too


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"]
            ),
            st.one_of(
                st.binary(max_size=30),
                st.sampled_from([ETAG, WEAK_ETAG, OTHER, b"*", LATER, EARLIER, b'W/"x", "y"']),
            ),
        ),
        max_size=5,
    ),
    st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT"]),
)
def test_evaluate_never_raises_on_client_input(
    fields: list[tuple[str, bytes]], method: bytes
) -> None:
    assert evaluate(method, headers(*fields), ETAG, MTIME_S) in (None, 304, 412)


# --- if_range_allows (RFC 9110 13.1.5) ----------------------------------------------------

IF_RANGE_CASES = [
    ([], None, True),  # no If-Range
    ([("If-Range", ETAG)], None, True),
    ([("If-Range", OTHER)], None, False),
    ([("If-Range", WEAK_ETAG)], None, False),  # a weak tag never matches
    ([("If-Range", LAST_MODIFIED)], None, True),  # exact date
    ([("If-Range", b"Tuesday, 14-Nov-23 22:13:20 GMT")], None, True),
    ([("If-Range", b"Tue Nov 14 22:13:20 2023")], None, True),
    ([("If-Range", LATER)], None, False),  # not "earlier or equal": exact only
    ([("If-Range", EARLIER)], None, False),
    ([("If-Range", b"garbage")], None, False),
    ([("If-Range", b'"unterminated')], None, False),
    ([("If-Range", ETAG + b", " + ETAG)], None, False),  # not a list
    ([("If-Range", ETAG), ("If-Range", ETAG)], None, False),
    ([("If-Range", b"")], None, True),  # an empty field is absent
    # With now_s: a date is strong only once its second is over (RFC 9110 8.8.2.2).
    ([("If-Range", LAST_MODIFIED)], MTIME_S, False),
    ([("If-Range", LAST_MODIFIED)], MTIME_S - 5, False),  # clock behind the file
    ([("If-Range", LAST_MODIFIED)], MTIME_S + 1, True),
    ([("If-Range", ETAG)], MTIME_S, True),  # the tag does not depend on the clock
]


@pytest.mark.parametrize(("fields", "now_s", "expected"), IF_RANGE_CASES)
def test_if_range_allows(
    fields: list[tuple[str, bytes]], now_s: int | None, expected: bool
) -> None:
    assert if_range_allows(headers(*fields), ETAG, MTIME_S, now_s=now_s) is expected


def test_if_range_never_matches_a_weak_own_tag() -> None:
    weak = b'W/"v1"'
    assert if_range_allows(headers(("If-Range", b'"v1"')), weak, MTIME_S) is False
    assert if_range_allows(headers(("If-Range", weak)), weak, MTIME_S) is False


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_if_range_never_raises_on_client_input(value: bytes) -> None:
    assert if_range_allows(headers(("If-Range", value)), ETAG, MTIME_S) in (True, False)
