"""Range parsing and the framing of 206 responses (RFC 9110 14)."""

from __future__ import annotations

import email.parser
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.apps.static.ranges import (
    UNSATISFIABLE,
    MultipartRanges,
    content_range,
    multipart_ranges,
    parse_range,
    unsatisfied_range,
)

BIG = 10**9  # a file large enough that rule 6 (bytes plus overhead) never applies

PARSE_CASES = [
    # (value, size, expected)
    (None, 1000, None),
    # The three forms of RFC 9110 14.1.1.
    (b"bytes=0-99", 1000, [(0, 100)]),
    (b"bytes=100-", 1000, [(100, 1000)]),
    (b"bytes=-500", 1000, [(500, 1000)]),
    (b"bytes=0-0", 1000, [(0, 1)]),
    (b"bytes=999-999", 1000, [(999, 1000)]),
    (b"bytes=999-", 1000, [(999, 1000)]),
    (b"bytes=0-", 1000, [(0, 1000)]),
    (b"bytes=000-0009", 1000, [(0, 10)]),
    # Past the end: last cut to the end, a long suffix is the whole file.
    (b"bytes=990-5000", 1000, [(990, 1000)]),
    (b"bytes=-5000", 1000, [(0, 1000)]),
    (b"bytes=-1000", 1000, [(0, 1000)]),
    # The unit is case-insensitive (RFC 9110 14.1); OWS around members is fine.
    (b"BYTES=0-9", 1000, [(0, 10)]),
    (b"Bytes=0-9", 1000, [(0, 10)]),
    (b"bytes= 0-9 ,\t20-29 ", BIG, [(0, 10), (20, 30)]),
    (b"bytes=0-9,,20-29,", BIG, [(0, 10), (20, 30)]),  # empty members (RFC 9110 5.6.1)
    # Several ranges keep the client's order.
    (b"bytes=20-29,0-9", BIG, [(20, 30), (0, 10)]),
    (b"bytes=-10,0-9", BIG, [(BIG - 10, BIG), (0, 10)]),
    # Overlapping and adjacent ranges coalesce, at the place of their first member.
    (b"bytes=0-9,5-14", BIG, [(0, 15)]),
    (b"bytes=0-9,10-19", BIG, [(0, 20)]),
    (b"bytes=0-9,0-9", BIG, [(0, 10)]),
    (b"bytes=500-509,0-9,5-14", BIG, [(500, 510), (0, 15)]),
    (b"bytes=5-14,500-509,0-9", BIG, [(0, 15), (500, 510)]),
    (b"bytes=0-9,11-19", BIG, [(0, 10), (11, 20)]),  # a gap of one byte stays
    # Unsatisfiable members are dropped; none left is UNSATISFIABLE.
    (b"bytes=0-9,1000-", 1000, [(0, 10)]),
    (b"bytes=1000-", 1000, UNSATISFIABLE),
    (b"bytes=1000-1000", 1000, UNSATISFIABLE),
    (b"bytes=5000-6000", 1000, UNSATISFIABLE),
    (b"bytes=-0", 1000, UNSATISFIABLE),
    (b"bytes=-0,1000-,2000-3000", 1000, UNSATISFIABLE),
    # Malformed in any member: the field is ignored.
    (b"bytes=", 1000, None),
    (b"bytes=,", 1000, None),
    (b"bytes=,, ,", 1000, None),
    (b"bytes=-", 1000, None),
    (b"bytes=9-0", 1000, None),  # last below first
    (b"bytes=0-9,9-0", 1000, None),
    (b"bytes=abc", 1000, None),
    (b"bytes=+1-2", 1000, None),
    (b"bytes=1-+2", 1000, None),
    (b"bytes=-1-2", 1000, None),
    (b"bytes=1-2-3", 1000, None),
    (b"bytes=0x10-", 1000, None),
    (b"bytes=1 -2", 1000, None),
    (b"bytes=1- 2", 1000, None),
    (b"bytes=0-9;q=1", 1000, None),
    (b"bytes=0-9,abc", 1000, None),
    (b"bytes=\xd9\xa1-2", 1000, None),  # a non-ASCII digit
    (b"bytes=\xff", 1000, None),
    (b"bytes 0-9", 1000, None),
    (b"0-9", 1000, None),
    (b"items=0-9", 1000, None),  # another unit
    (b"bytes=0-9=", 1000, None),
    (b"", 1000, None),
    # An empty file: Range is ignored, whatever its form.
    (b"bytes=0-", 0, None),
    (b"bytes=0-0", 0, None),
    (b"bytes=-1", 0, None),
    (b"bytes=-0", 0, None),
    (b"bytes=9-0", 0, None),
    # Numbers of any length.
    (b"bytes=0-" + b"9" * 5000, 1000, [(0, 1000)]),
    (b"bytes=" + b"9" * 5000 + b"-", 1000, UNSATISFIABLE),
    (b"bytes=-" + b"9" * 5000, 1000, [(0, 1000)]),
    (b"bytes=" + b"9" * 5000 + b"-" + b"9" * 4999, 1000, None),  # last below first
    (b"bytes=" + b"0" * 5000 + b"5-" + b"9" * 5000, 1000, [(5, 1000)]),
    # Denial of service: ranges that cost more than the file go as the whole file.
    (b"bytes=0-,0-", 1000, None),
    (b"bytes=0-499,500-999", 1000, None),
    (b"bytes=0-0,2-2", 100, None),  # 2 bytes + 2 * 80 of overhead > 100
    (b"bytes=0-0,2-2", 200, [(0, 1), (2, 3)]),
    (b"bytes=0-0,0-0", 1000, [(0, 1)]),
    (b"bytes=-600,0-599", 1000, None),
]


@pytest.mark.parametrize(("value", "size_bytes", "expected"), PARSE_CASES)
def test_parse_range(value: bytes | None, size_bytes: int, expected: object) -> None:
    assert parse_range(value, size_bytes) == expected


def test_parse_range_ignores_more_than_max_ranges() -> None:
    sixteen = b"bytes=" + b",".join(b"%d-%d" % (i * 10, i * 10) for i in range(16))
    seventeen = sixteen + b",500-500"
    assert parse_range(sixteen, BIG) == [(i * 10, i * 10 + 1) for i in range(16)]
    assert parse_range(seventeen, BIG) is None
    assert parse_range(seventeen, BIG, max_ranges=17) is not None
    assert parse_range(b"bytes=0-0,5-5", BIG, max_ranges=1) is None
    # Empty members do not count.
    assert parse_range(sixteen + b"," * 50, BIG) == [(i * 10, i * 10 + 1) for i in range(16)]


def test_parse_range_rejects_a_negative_size() -> None:
    with pytest.raises(ValueError):
        parse_range(b"bytes=0-1", -1)


SPEC_VALUE = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 400), st.none() | st.integers(0, 400)),
        st.tuples(st.none(), st.integers(0, 400)),
    ),
    min_size=1,
    max_size=6,
)


def _spec_text(spec: tuple[int | None, int | None]) -> bytes:
    first, last = spec
    return (
        (b"" if first is None else b"%d" % first) + b"-" + (b"" if last is None else b"%d" % last)
    )


def _assert_well_formed(result: object, size_bytes: int, max_ranges: int = 16) -> None:
    if result is None or result is UNSATISFIABLE:
        return
    assert isinstance(result, list)
    assert 1 <= len(result) <= max_ranges
    for start, stop in result:
        assert 0 <= start < stop <= size_bytes
    ordered = sorted(result)
    for (_, stop), (start, _) in zip(ordered, ordered[1:], strict=False):
        assert stop < start  # disjoint and not adjacent


@settings(max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=60),
        st.lists(st.sampled_from([b"bytes=", b"0", b"9", b"-", b",", b" ", b"1", b"x"])).map(
            b"".join
        ),
    ),
    st.integers(min_value=0, max_value=2**64),
)
def test_parse_range_never_raises_and_stays_in_bounds(value: bytes, size_bytes: int) -> None:
    _assert_well_formed(parse_range(value, size_bytes), size_bytes)


@settings(max_examples=200)
@given(SPEC_VALUE, st.integers(min_value=0, max_value=300))
def test_parse_range_covers_exactly_the_requested_bytes(
    specs: list[tuple[int | None, int | None]], size_bytes: int
) -> None:
    value = b"bytes=" + b",".join(_spec_text(spec) for spec in specs)
    result = parse_range(value, size_bytes)
    _assert_well_formed(result, size_bytes)
    if any(first is not None and last is not None and last < first for first, last in specs):
        assert result is None
        return
    wanted: set[int] = set()
    for first, last in specs:
        if first is None:
            assert last is not None
            wanted.update(range(max(0, size_bytes - last), size_bytes))
        else:
            wanted.update(range(first, size_bytes if last is None else min(last + 1, size_bytes)))
    if size_bytes == 0:
        assert result is None
    elif not wanted:
        assert result is UNSATISFIABLE
    elif isinstance(result, list):
        covered = {offset for start, stop in result for offset in range(start, stop)}
        assert covered == wanted
    else:
        assert result is None  # the whole file, chosen by the cost rule
        assert len(specs) > 1


# --- Content-Range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "size_bytes", "expected"),
    [
        (0, 100, 1000, b"bytes 0-99/1000"),
        (999, 1000, 1000, b"bytes 999-999/1000"),
        (0, 1, 1, b"bytes 0-0/1"),
    ],
)
def test_content_range(start: int, stop: int, size_bytes: int, expected: bytes) -> None:
    assert content_range(start, stop, size_bytes) == expected


@pytest.mark.parametrize(("start", "stop", "size_bytes"), [(5, 5, 10), (-1, 5, 10), (0, 11, 10)])
def test_content_range_rejects_what_is_not_in_the_file(
    start: int, stop: int, size_bytes: int
) -> None:
    with pytest.raises(ValueError):
        content_range(start, stop, size_bytes)


def test_unsatisfied_range() -> None:
    assert unsatisfied_range(1000) == b"bytes */1000"
    assert unsatisfied_range(0) == b"bytes */0"


# --- multipart/byteranges -----------------------------------------------------------------

BOUNDARY = b"3d6b6a416f9b5a1c"


def _assemble(framing: MultipartRanges, data: bytes) -> bytes:
    pieces = [head + data[start:stop] for head, start, stop in framing.parts]
    return b"".join(pieces) + framing.closing


def _split_by_hand(body: bytes, boundary: bytes) -> list[tuple[dict[bytes, bytes], bytes]]:
    """Parse a multipart body strictly by RFC 2046's delimiters; return (fields, data)."""
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    inner = body[len(boundary) + 4 : -(len(boundary) + 8)]
    parts = []
    for chunk in inner.split(b"\r\n--" + boundary + b"\r\n"):
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b": ")
            fields[name.lower()] = value
        parts.append((fields, data))
    return parts


@pytest.mark.parametrize(
    "ranges",
    [
        [(0, 10), (20, 30)],
        [(500, 1000), (0, 1)],  # client order kept
        [(0, 1), (2, 3), (4, 5), (900, 1000)],
        [(0, 999), (999, 1000)],
    ],
)
def test_multipart_framing_parses_back(ranges: list[tuple[int, int]]) -> None:
    data = bytes(i % 251 for i in range(1000))  # every byte value, never "--"
    tricky = b"\r\n--\r\n\r\n"  # line breaks and a dash pair, which must not confuse a parser
    data = data[:3] + tricky + data[3 + len(tricky) :]
    framing = multipart_ranges(ranges, len(data), b"application/pdf", BOUNDARY)
    body = _assemble(framing, data)

    assert framing.content_length == len(body)
    assert framing.content_type == b"multipart/byteranges; boundary=" + BOUNDARY
    assert framing.boundary == BOUNDARY

    by_hand = _split_by_hand(body, BOUNDARY)
    assert [data_part for _, data_part in by_hand] == [data[a:b] for a, b in ranges]
    for (fields, _), (start, stop) in zip(by_hand, ranges, strict=True):
        assert fields[b"content-type"] == b"application/pdf"
        assert fields[b"content-range"] == b"bytes %d-%d/1000" % (start, stop - 1)

    head = b"Content-Type: " + framing.content_type + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart()
    assert message.get_content_type() == "multipart/byteranges"
    parts = list(message.iter_parts())
    assert len(parts) == len(ranges)
    for part, (start, stop) in zip(parts, ranges, strict=True):
        assert part["Content-Range"] == f"bytes {start}-{stop - 1}/1000"
        assert part.get_content_type() == "application/pdf"
        assert part.get_payload(decode=True) == data[start:stop]


def test_multipart_without_a_content_type_omits_the_field() -> None:
    framing = multipart_ranges([(0, 1), (5, 6)], 10, b"", BOUNDARY)
    assert framing.parts[0][0] == b"--" + BOUNDARY + b"\r\nContent-Range: bytes 0-0/10\r\n\r\n"
    assert framing.parts[1][0].startswith(b"\r\n--" + BOUNDARY + b"\r\n")
    assert framing.closing == b"\r\n--" + BOUNDARY + b"--\r\n"
    assert framing.content_length == len(_assemble(framing, b"0123456789"))


@pytest.mark.parametrize(
    ("ranges", "content_type", "boundary"),
    [
        ([(0, 1)], b"text/plain", BOUNDARY),  # a single range is never multipart
        ([], b"text/plain", BOUNDARY),
        ([(0, 1), (5, 11)], b"text/plain", BOUNDARY),  # past the end
        ([(0, 1), (5, 6)], b"text/plain\r\nX: y", BOUNDARY),
        ([(0, 1), (5, 6)], b"text/plain", b""),
        ([(0, 1), (5, 6)], b"text/plain", b"a" * 71),
        ([(0, 1), (5, 6)], b"text/plain", b"has space"),
        ([(0, 1), (5, 6)], b"text/plain", b"semi;colon"),
    ],
)
def test_multipart_rejects_bad_arguments(
    ranges: list[tuple[int, int]], content_type: bytes, boundary: bytes
) -> None:
    with pytest.raises(ValueError):
        multipart_ranges(ranges, 10, content_type, boundary)


@settings(max_examples=100)
@given(SPEC_VALUE, st.integers(min_value=1, max_value=2000))
def test_multipart_content_length_is_exact(
    specs: list[tuple[int | None, int | None]], size_bytes: int
) -> None:
    value = b"bytes=" + b",".join(_spec_text(spec) for spec in specs)
    ranges = parse_range(value, size_bytes)
    if not isinstance(ranges, list) or len(ranges) < 2:
        return
    data = bytes(range(256)) * (size_bytes // 256 + 1)
    framing = multipart_ranges(ranges, size_bytes, b"text/plain", BOUNDARY)
    body = _assemble(framing, data[:size_bytes])
    assert framing.content_length == len(body)
    parts = _split_by_hand(body, BOUNDARY)
    assert [part for _, part in parts] == [data[a:b] for a, b in ranges]
