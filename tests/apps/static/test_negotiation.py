"""Accept-Encoding and the choice of a precompressed variant (RFC 9110 12.5.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.apps.static.negotiation import choose_encoding, parse_accept_encoding

PARSE_CASES = [
    (None, {}),
    (b"", {}),
    (b"gzip", {"gzip": 1.0}),
    (b"gzip, br", {"gzip": 1.0, "br": 1.0}),
    (b"gzip;q=0.5, br;q=1.0", {"gzip": 0.5, "br": 1.0}),
    (b"gzip ; q=0.5 ,br;Q=0.25", {"gzip": 0.5, "br": 0.25}),  # OWS; "q" in any case
    (b"gzip; q = 0.5", {"gzip": 0.5}),  # OWS around "=": tolerated, never read as q=1
    (b"GZIP, Br", {"gzip": 1.0, "br": 1.0}),  # codings are case-insensitive
    (b"x-gzip", {"gzip": 1.0}),  # RFC 9110 8.4.1.3
    (b"x-compress;q=0.3", {"compress": 0.3}),
    (b"gzip;q=0", {"gzip": 0.0}),
    (b"gzip;q=0.", {"gzip": 0.0}),
    (b"gzip;q=1.000", {"gzip": 1.0}),
    (b"gzip;q=0.001", {"gzip": 0.001}),
    (b"*;q=0.1, identity;q=0", {"*": 0.1, "identity": 0.0}),
    (b"gzip, , br,", {"gzip": 1.0, "br": 1.0}),  # empty members (RFC 9110 5.6.1)
    (b"gzip;level=9", {"gzip": 1.0}),  # other parameters ignored
    (b"gzip;q=0.5, x-gzip;q=0.2", {"gzip": 0.2}),  # the lowest weight stands
    (b"gzip;q=0, gzip", {"gzip": 0.0}),
    # Malformed members are dropped whole.
    (b"gzip;q=2, br", {"br": 1.0}),
    (b"gzip;q=1.5", {}),
    (b"gzip;q=1.001", {}),
    (b"gzip;q=.5", {}),
    (b"gzip;q=0.1234", {}),
    (b"gzip;q=-0", {}),
    (b"gzip;q=", {}),
    (b"gzip;q", {}),
    (b"gzip;q=0.5;q=x", {}),
    (b"gz ip", {}),
    (b"gzip\xff", {}),
    (b'"gzip"', {}),
    (b";q=1", {}),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_CASES)
def test_parse_accept_encoding(value: bytes | None, expected: dict[str, float]) -> None:
    assert parse_accept_encoding(value) == expected


SERVER_ORDER = ("br", "gzip")

CHOOSE_CASES = [
    (None, SERVER_ORDER, None),  # no field: the plain file
    (b"", SERVER_ORDER, None),  # empty field: no coding wanted
    (b"gzip;q=abc", SERVER_ORDER, None),  # nothing usable
    (b"gzip", SERVER_ORDER, "gzip"),
    (b"br", SERVER_ORDER, "br"),
    (b"BR", SERVER_ORDER, "br"),
    (b"x-gzip", SERVER_ORDER, "gzip"),
    (b"deflate", SERVER_ORDER, None),
    (b"gzip, deflate, br, zstd", SERVER_ORDER, "br"),  # what browsers send
    (b"gzip, br", SERVER_ORDER, "br"),  # a tie goes to server order
    (b"gzip, br", ("gzip", "br"), "gzip"),
    (b"gzip;q=1, br;q=0.5", SERVER_ORDER, "gzip"),  # higher q beats server order
    (b"br;q=0, gzip", SERVER_ORDER, "gzip"),  # q=0 excludes
    (b"br;q=0, gzip;q=0", SERVER_ORDER, None),
    (b"*", SERVER_ORDER, "br"),
    (b"*;q=0", SERVER_ORDER, None),
    (b"gzip;q=0, *", SERVER_ORDER, "br"),  # "*" covers only codings not named
    (b"br;q=0, *", SERVER_ORDER, "gzip"),
    (b"br;q=0.2, *;q=0.5", SERVER_ORDER, "gzip"),
    (b"identity", SERVER_ORDER, None),
    (b"identity;q=0", SERVER_ORDER, None),  # nothing else acceptable: still identity
    (b"gzip;q=0.5", SERVER_ORDER, "gzip"),  # unnamed identity is only the fallback
    (b"gzip;q=0.5, identity", SERVER_ORDER, None),  # a named identity competes
    (b"gzip;q=0.5, identity;q=0.5", SERVER_ORDER, "gzip"),  # tie: the coding
    (b"gzip;q=0.5, *;q=0.8", SERVER_ORDER, "br"),  # br and identity at 0.8: br
    (b"gzip;q=0.5, *;q=0.4", ("gzip",), "gzip"),
    (b"gzip;q=0.5, *;q=0.6", ("gzip",), None),  # identity takes "*"'s 0.6
    (b"gzip;q=0.5, identity;q=0, *;q=0.9", ("gzip",), "gzip"),
    (b"gzip", (), None),
    (b"gzip", ("identity", "gzip"), "gzip"),  # identity in the tuple is skipped
    (b"*", ("identity", "*"), None),
    (b"gzip", ("x-gzip",), "x-gzip"),  # answered as the server spelled it
    (b"gzip", ("GZip",), "GZip"),
]


@pytest.mark.parametrize(("value", "available", "expected"), CHOOSE_CASES)
def test_choose_encoding(value: bytes | None, available: tuple[str, ...], expected: str) -> None:
    assert choose_encoding(value, available) == expected


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.lists(
            st.sampled_from([b"gzip", b"br", b"*", b"identity", b";q=", b"0.5", b"1", b",", b" "])
        ).map(b"".join),
    )
)
def test_negotiation_never_raises(value: bytes) -> None:
    weights = parse_accept_encoding(value)
    assert all(0.0 <= weight <= 1.0 for weight in weights.values())
    assert all(name == name.lower() for name in weights)
    assert choose_encoding(value, SERVER_ORDER) in (None, *SERVER_ORDER)
